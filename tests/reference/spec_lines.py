"""The reference oracle's reading of input lines (SPEC 2 and 4): vocabulary, field validators, one line's verdict.

Part of the naive, independent reference implementation of SPEC.md
(``tests/reference/spec_oracle.py`` computes the reports from what this
reads). Standard library only; it shares no code with the real engine.
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

ZERO = Decimal(0)
ONE = Decimal(1)
TEN_POW_12 = Decimal(10) ** 12


# --------------------------------------------------------------------------
# SPEC 2: the vocabulary
# --------------------------------------------------------------------------

CONFIG_TYPES = ("campaign", "promotion_plan", "fx_rate", "postback_rule")
POSTBACK_KINDS = ("activate", "first_pay", "every_pay")
FACT_TYPES = ("ad_spend", "impression", "click", "redirect", "payment", "ad_unlock", "refund")
ALL_TYPES = frozenset(CONFIG_TYPES + FACT_TYPES)

PLATFORMS = frozenset({"douyin", "kuaishou", "tencent", "tiktok", "other"})
HOSTS = frozenset({"wechat", "douyin", "app"})
PAYMENT_KINDS = frozenset({"unlock", "recharge", "subscription"})

# Rejection reasons, in the order the checks run (SPEC 4).
R_INVALID_JSON = "invalid_json"
R_UNKNOWN_TYPE = "unknown_type"
R_INVALID_FIELD = "invalid_field"
R_NO_FX_RATE = "no_fx_rate"
R_UNKNOWN_ORDER = "unknown_order"
R_REFUND_EXCEEDS = "refund_exceeds_payment"

# SPEC 2: "plain digits and one optional point".
# AMBIGUITY: "12." and ".5" are rejected (digits are required on both sides of
# the point). Only ASCII digits; fullmatch so a trailing newline is not allowed.
_DECIMAL_STRING_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# SPEC 2: "three capital letters" (ASCII A-Z). AMBIGUITY: any such triple is
# accepted; the oracle does not carry the ISO 4217 list.
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
# SPEC 2: effective_date is YYYY-MM-DD.
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# SPEC 2: RFC 3339 date-time, offset required ("Z" or +HH:MM / -HH:MM).
# AMBIGUITY: per RFC 3339 5.6 the "T" and "Z" may be lower case; a space
# instead of "T" is not accepted; second 60 (leap second) is not accepted.
_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_UTC_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _JsonInt(Decimal):
    """A JSON number written without fraction or exponent (a JSON integer).

    Used as ``parse_int`` so that integers stay exact (no int-digit limits) and
    so that ``schema_version`` can be checked to be an integer (SPEC 2)."""


class _Invalid(Exception):
    """Raised by field validators: the event is rejected ``invalid_field``."""


class Event:
    """A structurally valid event (passed the SPEC 4 checks up to invalid_field)."""

    __slots__ = ("line_no", "type", "event_id", "ts", "date", "f")

    def __init__(self, line_no, type_, event_id, ts, local_date, fields):
        self.line_no = line_no  # position in the input (file order)
        self.type = type_
        self.event_id = event_id
        self.ts = ts  # exact instant: Decimal seconds since 1970-01-01T00:00:00Z
        self.date = local_date  # local date of ts in the reporting tz, as an ordinal
        self.f = fields  # type-specific validated fields

    @property
    def key(self):
        """SPEC 3: "latest"/"earliest" compare (ts, event_id)."""
        return (self.ts, self.event_id)

    def __repr__(self):  # pragma: no cover - debugging aid
        return f"Event({self.type}, {self.event_id}, {self.ts}, {self.f})"


# --------------------------------------------------------------------------
# SPEC 2 / 4: field validators (each raises _Invalid -> invalid_field)
# --------------------------------------------------------------------------


def _field(obj, name):
    """SPEC 2: "A field whose value is JSON null counts as absent"."""
    return obj.get(name)


def _req_id(obj, name):
    """SPEC 2: IDs are strings of 1-128 characters (Unicode code points)."""
    v = _field(obj, name)
    if v is None or not isinstance(v, str) or not (1 <= len(v) <= 128):
        raise _Invalid(name)
    return v


def _opt_id(obj, name):
    if _field(obj, name) is None:
        return None
    return _req_id(obj, name)


def _req_enum(obj, name, allowed):
    v = _field(obj, name)
    if not isinstance(v, str) or v not in allowed:
        raise _Invalid(name)
    return v


def _req_currency(obj, name="currency"):
    v = _field(obj, name)
    if not isinstance(v, str) or not _CURRENCY_RE.fullmatch(v):
        raise _Invalid(name)
    return v


def _fraction_digits(d: Decimal) -> int:
    """Number of fractional digits once trailing zeros are dropped (SPEC 2).

    Done by hand on the digit tuple (Decimal.normalize would round to the
    context precision)."""
    _sign, digits, exp = d.as_tuple()
    digits = list(digits)
    while exp < 0 and len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exp += 1
    if all(x == 0 for x in digits):
        return 0
    return max(0, -exp)


def _decimal_value(obj, name):
    """SPEC 2: a decimal string (plain digits, one optional point) or a JSON
    number; >= 0 and < 10^12. A boolean is not a number."""
    v = _field(obj, name)
    if v is None or isinstance(v, bool):
        raise _Invalid(name)
    if isinstance(v, str):
        if not _DECIMAL_STRING_RE.fullmatch(v):
            raise _Invalid(name)
        d = Decimal(v)
    elif isinstance(v, Decimal):  # JSON number (parse_float=Decimal / _JsonInt)
        d = Decimal(v)
    else:
        raise _Invalid(name)
    if not d.is_finite() or d < 0 or d >= TEN_POW_12:
        raise _Invalid(name)
    return d


def _req_money(obj, name):
    """SPEC 2: money has at most 4 fractional digits after dropping trailing zeros."""
    d = _decimal_value(obj, name)
    if _fraction_digits(d) > 4:
        raise _Invalid(name)
    return d


def _req_rate(obj, name):
    """SPEC 2: rates "take the same forms with any number of fractional digits".

    AMBIGUITY: "the same forms" is read as: string or JSON number, >= 0 and
    < 10^12, no limit on fractional digits. The type-specific bounds (fx rate
    > 0, commission_rate in [0, 1]) are checked by the callers."""
    return _decimal_value(obj, name)


def _parse_timestamp(v, zone):
    """SPEC 2: RFC 3339 timestamp with an offset. Returns (instant, local
    date ordinal, parts) or raises _Invalid.

    The instant is exact (Decimal seconds, any number of fractional digits)."""
    if not isinstance(v, str):
        raise _Invalid("ts")
    m = _TS_RE.fullmatch(v)
    if not m:
        raise _Invalid("ts")  # includes "no offset = invalid"
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7)
    try:
        d = date(year, month, day)  # rejects year 0000 and impossible dates
    except ValueError:
        raise _Invalid("ts") from None
    if hour > 23 or minute > 59 or second > 59:
        raise _Invalid("ts")
    if m.group(8):  # "Z"
        offset = 0
    else:
        oh, om = int(m.group(10)), int(m.group(11))
        if oh > 23 or om > 59:
            raise _Invalid("ts")
        # AMBIGUITY: "-00:00" is accepted and means UTC.
        offset = (oh * 3600 + om * 60) * (1 if m.group(9) == "+" else -1)
    whole_seconds = (d.toordinal() - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second - offset
    instant = Decimal(whole_seconds)
    if frac:
        instant += Decimal("0." + frac)
    # Local date in the reporting time zone ("Local date" in SPEC 3). The
    # fraction never changes the date, so the whole seconds suffice.
    try:
        local = (_UTC_EPOCH + timedelta(seconds=whole_seconds)).astimezone(zone).date()
    except (OverflowError, ValueError):
        # AMBIGUITY: an instant whose local date is outside years 1..9999.
        raise _Invalid("ts") from None
    parts = {"minute": minute, "second": second, "frac": frac}
    return instant, local.toordinal(), parts


def _req_date(obj, name):
    """SPEC 2: effective_date is YYYY-MM-DD (a real calendar date)."""
    v = _field(obj, name)
    if not isinstance(v, str):
        raise _Invalid(name)
    m = _DATE_RE.fullmatch(v)
    if not m:
        raise _Invalid(name)
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3))).toordinal()
    except ValueError:
        raise _Invalid(name) from None


def _validate_type_fields(t, obj, zone):
    """SPEC 2 tables: the required/optional fields of each event type."""
    f = {}
    if t == "campaign":
        f["campaign_id"] = _req_id(obj, "campaign_id")
        f["platform"] = _req_enum(obj, "platform", PLATFORMS)
        f["drama_id"] = _req_id(obj, "drama_id")
        f["buyer_id"] = _req_id(obj, "buyer_id")
        # AMBIGUITY: optional `name`, when present, must be a string (no length limit).
        name = _field(obj, "name")
        if name is not None and not isinstance(name, str):
            raise _Invalid("name")
    elif t == "promotion_plan":
        f["plan_id"] = _req_id(obj, "plan_id")
        f["creator_id"] = _req_id(obj, "creator_id")
        f["drama_id"] = _req_id(obj, "drama_id")
        rate = _req_rate(obj, "commission_rate")
        if not (ZERO <= rate <= ONE):  # "decimal in [0, 1]"
            raise _Invalid("commission_rate")
        f["commission_rate"] = rate
    elif t == "fx_rate":
        f["currency"] = _req_currency(obj)
        rate = _req_rate(obj, "rate")
        if not rate > 0:  # "> 0"
            raise _Invalid("rate")
        f["rate"] = rate
        f["effective_date"] = _req_date(obj, "effective_date")
    elif t == "postback_rule":
        # SPEC 2/7: configuration only; it never changes a report.
        f["campaign_id"] = _req_id(obj, "campaign_id")
        kinds = _field(obj, "kinds")
        if not isinstance(kinds, list) or not all(isinstance(k, str) and k in POSTBACK_KINDS for k in kinds):
            raise _Invalid("kinds")
        if _field(obj, "min_amount") is not None:
            _req_money(obj, "min_amount")
        ratio = _req_rate(obj, "send_ratio")
        if not (ZERO <= ratio <= ONE):
            raise _Invalid("send_ratio")
    elif t == "ad_spend":
        f["campaign_id"] = _req_id(obj, "campaign_id")
        instant, local_date, parts = _parse_timestamp(_field(obj, "period_start"), zone)
        # "hour-aligned in its own offset": minutes, seconds and fraction are zero.
        if parts["minute"] != 0 or parts["second"] != 0 or (parts["frac"] and parts["frac"].strip("0")):
            raise _Invalid("period_start")
        f["period_start"] = instant
        f["period_date"] = local_date
        f["amount"] = _req_money(obj, "amount")
        f["currency"] = _req_currency(obj)
    elif t == "impression":
        f["campaign_id"] = _req_id(obj, "campaign_id")
        f["device_id"] = _req_id(obj, "device_id")
    elif t == "click":
        f["click_id"] = _req_id(obj, "click_id")
        f["device_id"] = _req_id(obj, "device_id")
        campaign_id = _opt_id(obj, "campaign_id")
        plan_id = _opt_id(obj, "plan_id")
        # "exactly one of campaign_id or plan_id" (both or neither: invalid_field)
        if (campaign_id is None) == (plan_id is None):
            raise _Invalid("campaign_id/plan_id")
        f["source"] = ("campaign", campaign_id) if campaign_id is not None else ("plan", plan_id)
        # SPEC 2: optional `callback`, a string of 1-4096 characters.
        callback = _field(obj, "callback")
        if callback is not None and not (isinstance(callback, str) and 1 <= len(callback) <= 4096):
            raise _Invalid("callback")
    elif t == "redirect":
        f["user_id"] = _req_id(obj, "user_id")
        f["app_id"] = _req_id(obj, "app_id")
        f["host"] = _req_enum(obj, "host", HOSTS)
        f["click_id"] = _opt_id(obj, "click_id")
        f["device_id"] = _opt_id(obj, "device_id")
    elif t == "payment":
        f["order_id"] = _req_id(obj, "order_id")
        f["user_id"] = _req_id(obj, "user_id")
        f["drama_id"] = _req_id(obj, "drama_id")
        f["amount"] = _req_money(obj, "amount")
        f["currency"] = _req_currency(obj)
        f["kind"] = _req_enum(obj, "kind", PAYMENT_KINDS)
    elif t == "ad_unlock":
        f["user_id"] = _req_id(obj, "user_id")
        f["drama_id"] = _req_id(obj, "drama_id")
        f["revenue"] = _req_money(obj, "revenue")
        f["currency"] = _req_currency(obj)
    elif t == "refund":
        f["order_id"] = _req_id(obj, "order_id")
        f["amount"] = _req_money(obj, "amount")
        f["currency"] = _req_currency(obj)
    else:  # pragma: no cover - ALL_TYPES is checked before
        raise AssertionError(t)
    return f


def _all_strings_are_unicode(obj) -> bool:
    """False if any key or string contains a lone surrogate (from a \\uD800-style
    escape), i.e. the document is not representable as UTF-8.

    AMBIGUITY: such a line is treated as invalid_json ("not UTF-8")."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, str):
            try:
                x.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(x, dict):
            stack.extend(x.keys())
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return True


def _reject_constant(name):
    # NaN / Infinity / -Infinity are not JSON.
    raise ValueError(f"not JSON: {name}")


def _validate_line(line_no: int, raw: bytes, zone):
    """SPEC 4: structural checks in order invalid_json, unknown_type, invalid_field.

    Returns an Event, or the rejection reason (a string)."""
    # invalid_json: not UTF-8 ...
    try:
        text = raw.decode("utf-8")  # strict; a BOM is then "not JSON" below
    except UnicodeDecodeError:
        return R_INVALID_JSON
    # ... not JSON ...
    try:
        obj = json.loads(text, parse_float=Decimal, parse_int=_JsonInt, parse_constant=_reject_constant)
    except (ValueError, RecursionError, ArithmeticError):
        return R_INVALID_JSON
    if not _all_strings_are_unicode(obj):
        return R_INVALID_JSON
    # ... or JSON that is not an object.
    if not isinstance(obj, dict):
        return R_INVALID_JSON

    # `type`: missing/null/non-string -> invalid_field; unknown string -> unknown_type.
    t = _field(obj, "type")
    if not isinstance(t, str):
        return R_INVALID_FIELD
    if t not in ALL_TYPES:
        return R_UNKNOWN_TYPE

    # invalid_field: common fields, then the type's own fields.
    try:
        event_id = _req_id(obj, "event_id")
        ts, local_date, _parts = _parse_timestamp(_field(obj, "ts"), zone)
        sv = _field(obj, "schema_version")
        # "schema_version, when present, is a JSON integer" (not bool, not 1.0).
        # AMBIGUITY: any integer value is accepted (the SPEC lists no versions).
        if sv is not None and not isinstance(sv, _JsonInt):
            raise _Invalid("schema_version")
        fields = _validate_type_fields(t, obj, zone)
    except _Invalid:
        return R_INVALID_FIELD
    return Event(line_no, t, event_id, ts, local_date, fields)


def _is_blank(raw: bytes) -> bool:
    """SPEC 4: blank lines are skipped. AMBIGUITY: "blank" = only JSON
    whitespace (space, tab, CR, LF)."""
    return raw.strip(b" \t\r\n") == b""
