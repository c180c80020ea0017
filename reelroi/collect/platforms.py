"""Click-monitor links (监测链接): one mapping table per ad platform, and the pure query → ``click`` mapping.

A platform calls ``GET /collect/v1/click/<platform>?<name>=<value>&…`` for every
click, with the macros of the link filled in. Each ``Platform`` below says which
query parameter carries the click id, the ad id (the ``campaign_id``), the
callback, the click time and the device identifiers (first present wins, in the
order listed). The link itself is printed by ``reelroi collect --links`` from
``Param`` (name=MACRO). docs/collector.md has the tables with their sources.

To add a platform: add a ``Platform`` to ``PLATFORMS`` (its path name, its
``Param`` list and which names fill which field), a row of tests in
tests/streams/test_collector.py, and its table in docs/collector.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson

MAX_ID = 128  # SPEC 2
_MACRO = re.compile(r"__[A-Z0-9_]+__")  # a macro the platform left unfilled: it does not support the field
_ZEROS = re.compile(r"[0\-]+")  # an all-zero IDFA/OAID: the user limited ad tracking
_NOTHING = frozenset({"null", "none", "nil", "undefined", "unknown", "d41d8cd98f00b204e9800998ecf8427e"})  # md5("")
_MS_FROM = 100_000_000_000  # a Unix time this large is in milliseconds (10^11 s is the year 5138)


@dataclass(frozen=True)
class Param:
    """One query parameter of a platform's link: ``name=MACRO``."""

    name: str
    macro: str
    meaning: str


@dataclass(frozen=True)
class Platform:
    """How one platform's monitor query becomes a ``click`` event."""

    name: str  # the path segment: /collect/v1/click/<name>
    params: tuple[Param, ...]  # the link's query, in order
    click_id: tuple[str, ...]  # parameter names; empty: the click id is derived from the callback
    campaign: tuple[str, ...]
    callback: tuple[str, ...]
    time: tuple[str, ...]
    time_unit: str  # what the platform documents (the value's size decides anyway)
    devices: tuple[str, ...]  # first present is the device_id

    def link_query(self) -> str:
        return "&".join(f"{p.name}={p.macro}" for p in self.params)


OCEANENGINE = Platform(
    name="oceanengine",
    params=(
        Param("clickid", "__CLICKID__", "click id"),
        Param("promotion_id", "__PROMOTION_ID__", "ad (promotion, 广告) id, Ocean Engine 2.0"),
        Param("aid", "__AID__", "ad plan id, Ocean Engine 1.0"),
        Param("callback", "__CALLBACK_PARAM__", "conversion callback token"),
        Param("ts", "__TS__", "click time, Unix milliseconds"),
        Param("oaid", "__OAID__", "OAID, raw"),
        Param("idfa", "__IDFA__", "IDFA, raw"),
        Param("imei", "__IMEI__", "IMEI, MD5"),
        Param("android_id", "__ANDROIDID__", "Android id, MD5"),
        Param("oaid_md5", "__OAID_MD5__", "OAID, MD5"),
    ),
    click_id=("clickid",),
    campaign=("promotion_id", "aid"),
    callback=("callback",),
    time=("ts",),
    time_unit="ms",
    devices=("oaid", "idfa", "imei", "android_id", "oaid_md5"),
)

TENCENT = Platform(
    name="tencent",
    params=(
        Param("click_id", "__CLICK_ID__", "click id"),
        Param("adgroup_id", "__ADGROUP_ID__", "ad id (广告, v3.0; ad group before)"),
        Param("campaign_id", "__CAMPAIGN_ID__", "campaign id, old ads only"),
        Param("callback", "__CALLBACK__", "conversion callback (URL-encoded)"),
        Param("click_time", "__CLICK_TIME__", "click time, Unix seconds"),
        Param("oaid", "__OAID__", "OAID, raw"),
        Param("muid", "__MUID__", "IMEI (Android) or IDFA (iOS), MD5"),
        Param("hash_android_id", "__HASH_ANDROID_ID__", "Android id, MD5"),
        Param("hash_oaid", "__HASH_OAID__", "OAID, MD5"),
    ),
    click_id=("click_id",),
    campaign=("adgroup_id", "campaign_id"),
    callback=("callback",),
    time=("click_time",),
    time_unit="s",
    devices=("oaid", "muid", "hash_android_id", "hash_oaid"),
)

KUAISHOU = Platform(
    name="kuaishou",
    params=(
        Param("callback", "__CALLBACK__", "conversion callback, unique per click"),
        Param("aid", "__AID__", "ad group (广告组) id"),
        Param("ts", "__TS__", "click time, Unix milliseconds"),
        Param("oaid", "__OAID__", "OAID, raw"),
        Param("idfa", "__IDFA__", "IDFA, raw"),
        Param("imei2", "__IMEI2__", "IMEI, MD5"),
        Param("androidid2", "__ANDROIDID2__", "Android id, MD5"),
        Param("oaid2", "__OAID2__", "OAID, MD5"),
        Param("idfa2", "__IDFA2__", "IDFA, MD5"),
    ),
    click_id=(),  # no click-id macro: the callback is unique per click
    campaign=("aid",),
    callback=("callback",),
    time=("ts",),
    time_unit="ms",
    devices=("oaid", "idfa", "imei2", "androidid2", "oaid2", "idfa2"),
)

PLATFORMS: dict[str, Platform] = {p.name: p for p in (OCEANENGINE, TENCENT, KUAISHOU)}


def query_values(query: bytes) -> dict[str, str]:
    """The query's parameters, the first occurrence of each; values percent-decoded once (as sent)."""
    values: dict[str, str] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True, encoding="utf-8", errors="replace"):
        values.setdefault(name, value)
    return values


def filled(value: str | None, device: bool = False) -> str | None:
    """``value`` unless the platform left it empty, unfilled (``__OAID__``) or, for a device id, zeroed."""
    if value is None:
        return None
    value = value.strip()
    if not value or _MACRO.fullmatch(value) or value.lower() in _NOTHING:
        return None
    if device and _ZEROS.fullmatch(value):
        return None
    return value


def _first(values: dict[str, str], names: tuple[str, ...], device: bool = False) -> str | None:
    for name in names:
        found = filled(values.get(name), device)
        if found is not None:
            return found
    return None


def click_id_of_callback(callback: str) -> str:
    """The click id of a platform whose callback is the click's identity: the callback itself when it fits an
    id (1–128 characters), else ``cb-`` and the SHA-256 hex of its UTF-8 bytes (a redirect must send the same)."""
    if len(callback) <= MAX_ID:
        return callback
    return "cb-" + hashlib.sha256(callback.encode("utf-8")).hexdigest()


def event_id_of(platform: str, click_id: str) -> str:
    """``<platform>:<click_id>``, or ``<platform>:sha256:<hex>`` when that passes 128 characters."""
    plain = f"{platform}:{click_id}"
    if len(plain) <= MAX_ID:
        return plain
    return f"{platform}:sha256:{hashlib.sha256(click_id.encode('utf-8')).hexdigest()}"


def click_time(value: str | None, received: datetime) -> str:
    """RFC 3339 (UTC, milliseconds) of a Unix time in seconds or milliseconds; ``received`` when absent or not
    a plausible time (before 2000 or after 2100)."""
    when = received
    if value is not None and value.isascii() and value.isdigit() and len(value) <= 16:
        number = int(value)
        seconds = number / 1000 if number >= _MS_FROM else float(number)
        if 946_684_800 <= seconds < 4_102_444_800:
            when = datetime.fromtimestamp(seconds, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def map_click(platform: Platform, query: bytes, received: datetime) -> tuple[bytes | None, str]:
    """The ``click`` event line for one monitor query, or (None, why) when it cannot be mapped."""
    values = query_values(query)
    callback = _first(values, platform.callback)
    if platform.click_id:
        click_id = _first(values, platform.click_id)
    else:
        click_id = click_id_of_callback(callback) if callback is not None else None
    if click_id is None:
        return None, "no click id"
    campaign = _first(values, platform.campaign)
    if campaign is None:
        return None, "no ad id"
    event_id = event_id_of(platform.name, click_id)
    # no device identifier: the click is keyed by its event id, so only a redirect with its click_id finds it
    device = _first(values, platform.devices, device=True) or event_id
    event: dict[str, str] = {
        "type": "click",
        "event_id": event_id,
        "ts": click_time(_first(values, platform.time), received),
        "click_id": click_id,
        "campaign_id": campaign,
        "device_id": device,
    }
    if callback is not None:
        event["callback"] = callback
    return orjson.dumps(event), "ok"
