"""API tokens: created once, stored as a SHA-256 of the secret, revocable.

A token reads ``rr_<token_id>_<secret>``. The id finds the row; the secret is
compared in constant time against its stored hash. The token itself is shown
once, at creation, and never stored or logged.

A ``producer`` token sends events to ``reelroi collect`` (SPEC 7) and reads
nothing; its subject (optional) names who produces. The collector keeps the
hashes of active tokens in memory (``active_token_hashes``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime
from typing import NamedTuple

from clickhouse_connect.driver.client import Client

from attribution.errors import ConfigError

ROLES = ("admin", "buyer", "creator", "producer")
_COLUMNS = ["token_id", "name", "role", "subject", "secret_sha256", "created_at", "revoked", "version"]


class TokenInfo(NamedTuple):
    token_id: str
    name: str
    role: str
    subject: str
    created_at: datetime
    revoked: bool


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(client: Client, db: str, role: str, subject: str, name: str = "") -> tuple[str, TokenInfo]:
    """A new token for ``role``; ``subject`` is the buyer_id or creator_id it is scoped to."""
    if role not in ROLES:
        raise ConfigError(f"role must be one of {', '.join(ROLES)}")
    if role in ("buyer", "creator") and not subject:
        raise ConfigError(f"a {role} token needs --subject (the {role}_id it may see)")
    if role == "admin":
        subject = ""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    created = datetime.now(UTC)
    client.insert(
        f"{db}.tokens",
        [(token_id, name, role, subject, _hash(secret), created, 0, time.time_ns())],
        column_names=_COLUMNS,
    )
    return f"rr_{token_id}_{secret}", TokenInfo(token_id, name, role, subject, created, False)


def list_tokens(client: Client, db: str) -> list[TokenInfo]:
    rows = client.query(
        f"SELECT token_id, name, role, subject, created_at, revoked FROM {db}.tokens FINAL ORDER BY created_at"
    ).result_rows
    return [TokenInfo(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


def revoke_token(client: Client, db: str, token_id: str) -> bool:
    rows = client.query(
        f"SELECT token_id, name, role, subject, secret_sha256, created_at FROM {db}.tokens FINAL "
        "WHERE token_id = {id:String}",
        parameters={"id": token_id},
    ).result_rows
    if not rows:
        return False
    row = rows[0]
    client.insert(
        f"{db}.tokens",
        [(*row, 1, time.time_ns())],
        column_names=_COLUMNS,
    )
    return True


def verify_token(client: Client, db: str, token: str) -> TokenInfo | None:
    """The token's identity if it is well-formed, known, unrevoked and its secret matches."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "rr" or not parts[1] or len(token) > 200:
        return None
    rows = client.query(
        f"SELECT token_id, name, role, subject, created_at, revoked, secret_sha256 FROM {db}.tokens FINAL "
        "WHERE token_id = {id:String}",
        parameters={"id": parts[1]},
    ).result_rows
    if not rows:
        return None
    r = rows[0]
    if r[5] or not hmac.compare_digest(r[6], _hash(parts[2])):
        return None
    return TokenInfo(r[0], r[1], r[2], r[3], r[4], False)


def active_token_hashes(client: Client, db: str) -> dict[str, tuple[str, str, str, str]]:
    """token_id -> (secret_sha256, role, name, subject) of every unrevoked token, for a process that verifies
    tokens from memory (``reelroi collect`` takes ``producer`` ones and answers 403 to the others)."""
    rows = client.query(
        f"SELECT token_id, secret_sha256, role, name, subject FROM {db}.tokens FINAL WHERE revoked = 0"
    ).result_rows
    return {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
