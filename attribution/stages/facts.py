"""Facts: the versioned upserts every stage publishes and the sink writes, and their wire form.

A fact is one output row (an ``attribution.outputs`` tuple) with the version
it was computed at (docs/design/streaming.md section 2: the position of the
input record that last changed it). The sink keeps, per table key, the
greatest version, so a fact sent twice or out of order changes nothing.

On the wire a fact is one JSON line, a flat array ``[kind, version, field, …]``
with the row's fields in declaration order. Values travel exactly: decimals
as their ``str`` (``Decimal(text)`` gives back the same sign, digits and
exponent), dates as ISO ``YYYY-MM-DD``, raw bytes as base64 (they need not be
UTF-8). ``decode`` accepts only what ``encode`` writes.
"""

from __future__ import annotations

import binascii
import datetime as dt
from base64 import b64decode, b64encode
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, get_type_hints

import orjson

from attribution.outputs import (
    CampaignRow,
    Duplicate,
    FxRow,
    LoggedEvent,
    MoneyFact,
    PlanRow,
    PostbackDecision,
    PostbackDelivery,
    Rejection,
    SpendFact,
    UserFact,
)

MAX_VERSION = (1 << 63) - 1  # the column is UInt64; 63 bits keep it clear of signed readers


class Fact(NamedTuple):
    """One row of ``kind`` at ``version`` (0 ≤ version < 2**63)."""

    kind: str  # event | rejection | duplicate | user | money | spend | campaign | plan | fx | postback | delivery
    version: int
    row: Any  # the outputs tuple of that kind (ROWS)


# kind -> the row type it carries
ROWS: dict[str, type[tuple[Any, ...]]] = {
    "event": LoggedEvent,
    "rejection": Rejection,
    "duplicate": Duplicate,
    "user": UserFact,
    "money": MoneyFact,
    "spend": SpendFact,
    "campaign": CampaignRow,
    "plan": PlanRow,
    "fx": FxRow,
    "postback": PostbackDecision,
    "delivery": PostbackDelivery,
}

# kind -> the row's key in its table. Money is keyed by (user_id, event_id): an order's
# counted payment can move between users held by different partitions, whose versions are
# not comparable, so each (user, event) row must have exactly one producer.
_KEYS: dict[str, Callable[[Any], tuple[Any, ...]]] = {
    "event": lambda r: (r.event_id,),
    "rejection": lambda r: (r.key,),
    "duplicate": lambda r: (r.key,),
    "user": lambda r: (r.user_id,),
    "money": lambda r: (r.user_id, r.event_id),
    "spend": lambda r: (r.campaign_id, r.period_us),
    "campaign": lambda r: (r.campaign_id,),
    "plan": lambda r: (r.plan_id,),
    "fx": lambda r: (r.currency, r.effective_date),
    "postback": lambda r: (r.key,),
    "delivery": lambda r: (r.key,),
}


def key_of(fact: Fact) -> tuple[Any, ...]:
    """The key columns of the fact's row in its table (facts of one kind with equal keys replace each other)."""
    return _KEYS[fact.kind](fact.row)


def row_key(kind: str) -> Callable[[Any], tuple[Any, ...]]:
    """``key_of`` for bare rows of ``kind``."""
    return _KEYS[kind]


# --------------------------------------------------------------------------- field codecs


def _same(t: type) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    def enc(value: Any) -> Any:
        if type(value) is not t:
            raise ValueError(f"expected {t.__name__}, got {type(value).__name__}")
        return value

    return enc, enc


def _enc_bytes(value: Any) -> str:
    if type(value) is not bytes:
        raise ValueError(f"expected bytes, got {type(value).__name__}")
    return b64encode(value).decode("ascii")


def _dec_bytes(value: Any) -> bytes:
    if type(value) is not str:
        raise ValueError(f"expected base64 text, got {type(value).__name__}")
    try:
        return b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"bad base64: {exc}") from None


def _enc_date(value: Any) -> str:
    if type(value) is not dt.date:
        raise ValueError(f"expected date, got {type(value).__name__}")
    return value.isoformat()


def _dec_date(value: Any) -> dt.date:
    if type(value) is not str:
        raise ValueError(f"expected an ISO date, got {type(value).__name__}")
    parsed = dt.date.fromisoformat(value)  # ValueError if not a date
    if parsed.isoformat() != value:  # fromisoformat also takes 20260101, 2026-W01-1, …
        raise ValueError(f"not a YYYY-MM-DD date: {value!r}")
    return parsed


def _enc_decimal(value: Any) -> str:
    if type(value) is not Decimal:
        raise ValueError(f"expected Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    return str(value)


def _dec_decimal(value: Any) -> Decimal:
    if type(value) is not str:
        raise ValueError(f"expected decimal text, got {type(value).__name__}")
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {value[:40]!r}") from None
    # Decimal() also takes spaces, underscores, NaN; encode writes only the canonical finite form
    if not parsed.is_finite() or str(parsed) != value:
        raise ValueError(f"not a canonical finite decimal: {value[:40]!r}")
    return parsed


_CODECS: dict[Any, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    str: _same(str),
    int: _same(int),
    bool: _same(bool),
    bytes: (_enc_bytes, _dec_bytes),
    dt.date: (_enc_date, _dec_date),
    Decimal: (_enc_decimal, _dec_decimal),
}


class _Kind(NamedTuple):
    row: type[tuple[Any, ...]]
    encoders: tuple[Callable[[Any], Any], ...]
    decoders: tuple[Callable[[Any], Any], ...]


def _kind(row: type[tuple[Any, ...]]) -> _Kind:
    hints = get_type_hints(row)
    fields: tuple[str, ...] = row._fields  # type: ignore[attr-defined]
    pairs = [_CODECS[hints[name]] for name in fields]
    return _Kind(row, tuple(e for e, _ in pairs), tuple(d for _, d in pairs))


_KINDS = {kind: _kind(row) for kind, row in ROWS.items()}


# --------------------------------------------------------------------------- lines


_LINE = orjson.OPT_APPEND_NEWLINE


def json_line(value: object) -> bytes:
    """``orjson.dumps(value)``, in bytes of its own size.

    orjson's output keeps its 4 KiB write buffer whatever its length (3.12 on): a worker holding
    a batch of encoded lines held 4 KiB for each. A slice copies it out (tests/unit/test_replay_rows.py).
    """
    return orjson.dumps(value, option=_LINE)[:-1]


def encode(fact: Fact) -> bytes:
    """One JSON line (no newline). ``ValueError`` if the fact is not well formed."""
    kind, version, row = fact
    spec = _KINDS.get(kind) if type(kind) is str else None
    if spec is None:
        raise ValueError(f"unknown fact kind {kind!r}")
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        raise ValueError(f"fact version must be an int in 0..2**63-1, got {version!r}")
    if type(row) is not spec.row:
        raise ValueError(f"a {kind} fact carries a {spec.row.__name__}, not {type(row).__name__}")
    try:
        values = [enc(value) for enc, value in zip(spec.encoders, row, strict=True)]
        return json_line([kind, version, *values])
    except (ValueError, TypeError) as exc:  # orjson.JSONEncodeError is a TypeError
        raise ValueError(f"{kind} fact not encodable: {exc}") from None


def decode(line: bytes) -> Fact:
    """The fact ``encode`` wrote as ``line``; ``ValueError`` on anything else."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from None
    if type(data) is not list or len(data) < 2:
        raise ValueError("a fact line is a JSON array [kind, version, field, …]")
    kind, version = data[0], data[1]
    spec = _KINDS.get(kind) if type(kind) is str else None
    if spec is None:
        raise ValueError(f"unknown fact kind {kind!r}")
    if type(version) is not int or not 0 <= version <= MAX_VERSION:
        raise ValueError(f"bad fact version {version!r}")
    values = data[2:]
    if len(values) != len(spec.decoders):
        raise ValueError(f"a {kind} fact has {len(spec.decoders)} fields, the line {len(values)}")
    try:
        row = spec.row(*[dec(value) for dec, value in zip(spec.decoders, values, strict=True)])
    except ValueError as exc:
        raise ValueError(f"{kind} fact: {exc}") from None
    return Fact(kind, version, row)
