"""Settings from the environment, one pydantic-settings class per adapter.

The core never reads the environment: the CLI turns these into a ``Policy``
and a DSN and passes them in.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.framing import DEFAULT_MAX_LINE_BYTES

DEFAULT_DSN = "chdb://./.reelroi/chdb"


class ReelroiSettings(BaseSettings):
    """``REELROI_DB``, ``REELROI_TZ``, ``REELROI_CURRENCY``, ``REELROI_CLICK_WINDOW``, ``REELROI_VIEW_WINDOW``,
    ``REELROI_MAX_LINE_BYTES``."""

    model_config = SettingsConfigDict(env_prefix="REELROI_", extra="ignore")

    db: str = DEFAULT_DSN
    tz: str = "Asia/Shanghai"
    currency: str = "CNY"
    click_window: str = "7d"
    view_window: str = "24h"
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES  # a longer line (or Kafka message line) is rejected too_large


class ClickHouseSettings(BaseSettings):
    """``REELROI_CLICKHOUSE_DATABASE`` (default: the DSN's path, else ``reelroi``), ``..._PASSWORD``."""

    model_config = SettingsConfigDict(env_prefix="REELROI_CLICKHOUSE_", extra="ignore")

    database: str | None = None
    password: SecretStr | None = None


def with_password(dsn: str, password: SecretStr | None) -> str:
    """Put ``REELROI_CLICKHOUSE_PASSWORD`` into a server DSN that has a user but no password."""
    if password is None or dsn.startswith("chdb:") or "@" not in dsn:
        return dsn
    scheme, rest = dsn.split("://", 1)
    userinfo, host = rest.split("@", 1)
    if ":" in userinfo:
        return dsn
    return f"{scheme}://{userinfo}:{password.get_secret_value()}@{host}"
