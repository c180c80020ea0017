"""Opening a ClickHouse client from a DSN: embedded chdb or a server, same client."""

from __future__ import annotations

import logging
import re
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError

from attribution.errors import ConfigError, FatalSinkError, RetryableSinkError, SinkError

DEFAULT_DATABASE = "reelroi"
# The driver logs its own copy of every failure; reelroi reports each one once, itself.
logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_CODE = re.compile(r"Code: (\d+)")
# ClickHouse error codes worth retrying: timeouts, too many parts/queries, network.
RETRYABLE_CODES = {159, 160, 164, 202, 209, 210, 252, 319, 425}


def database_of(dsn: str, override: str | None = None) -> str:
    """The database to use: the override, else the DSN path for servers, else ``reelroi``."""
    name = override
    if not name and not dsn.startswith("chdb:"):
        name = urlsplit(dsn).path.strip("/") or None
    name = name or DEFAULT_DATABASE
    if not _IDENTIFIER.fullmatch(name):
        raise ConfigError(f"database name {name!r} must be a plain identifier")
    return name


def connect(dsn: str) -> Client:
    """A clickhouse-connect client for ``chdb:///dir`` (embedded, on disk) or ``http(s)://``."""
    try:
        if dsn.startswith("chdb:"):
            path = dsn.removeprefix("chdb://")
            if not path or path == "/":
                raise ConfigError(f"chdb DSN needs a directory, e.g. chdb:///path/to/dir (got {dsn!r})")
            # a relative directory (the default chdb://./.reelroi/chdb) is made absolute:
            # the driver would read "./x" as a host and a database
            directory = Path(path).resolve()
            directory.mkdir(parents=True, exist_ok=True)
            return clickhouse_connect.get_client(dsn=f"chdb://{directory}")
        parts = urlsplit(dsn)
        if parts.scheme not in ("http", "https", "clickhouse", "clickhouses"):
            raise ConfigError(f"unsupported DSN {dsn!r}: use chdb:///dir or http://user:pass@host:8123/db")
        # the DSN path names our database, which may not exist yet: connect to default
        server = parts._replace(path="/default").geturl()
        return clickhouse_connect.get_client(dsn=server, connect_timeout=5, send_receive_timeout=300)
    except ConfigError:
        raise
    except Exception as exc:
        raise translate(exc, f"cannot open ClickHouse at {redact(dsn)}") from exc


def redact(dsn: str) -> str:
    """The DSN without its password, for messages and logs."""
    parts = urlsplit(dsn)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return dsn


def translate(exc: BaseException, what: str) -> SinkError:
    """Map a driver exception to a retryable or fatal ``SinkError`` with its ClickHouse code."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _CODE.search(str(exc))
    code = int(match.group(1)) if match else None
    message = f"{what}: {textwrap.shorten(text, 240, placeholder=' …')}"
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError) or code in RETRYABLE_CODES:
        return RetryableSinkError(message, code)
    if isinstance(exc, ClickHouseError | DatabaseError):
        return FatalSinkError(message, code)
    return FatalSinkError(message, code)


def command(client: Client, sql: str, parameters: dict[str, Any] | None = None) -> Any:
    try:
        return client.command(sql, parameters=parameters)
    except Exception as exc:
        raise translate(exc, "ClickHouse command failed") from exc
