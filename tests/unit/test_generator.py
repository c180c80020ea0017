"""The traffic generator: deterministic, streaming, and faithful to SPEC.md section 2."""

from __future__ import annotations

import gc
import hashlib
import os
import re
import subprocess
import sys
import tracemalloc
from collections import Counter
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import orjson
import pytest

from reelroi.generator import GeneratorConfig, generate, live

SMALL = GeneratorConfig(seed=7, days=3, users_per_day=3_000, campaigns=12, plans=6)

# ---------------------------------------------------------------- a SPEC section 2 checker

_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_DECIMAL = re.compile(r"\d+(\.\d+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_MONEY, _RATE, _ID, _CUR, _TSF, _DATE = "money", "rate", "id", "currency", "ts", "date"
_REQUIRED: dict[str, dict[str, Any]] = {
    "campaign": {
        "campaign_id": _ID,
        "platform": {"douyin", "kuaishou", "tencent", "tiktok", "other"},
        "drama_id": _ID,
        "buyer_id": _ID,
    },
    "promotion_plan": {"plan_id": _ID, "creator_id": _ID, "drama_id": _ID, "commission_rate": _RATE},
    "fx_rate": {"currency": _CUR, "rate": _RATE, "effective_date": _DATE},
    "ad_spend": {"campaign_id": _ID, "period_start": _TSF, "amount": _MONEY, "currency": _CUR},
    "impression": {"campaign_id": _ID, "device_id": _ID},
    "click": {"click_id": _ID, "device_id": _ID},
    "redirect": {"user_id": _ID, "app_id": _ID, "host": {"wechat", "douyin", "app"}},
    "payment": {
        "order_id": _ID,
        "user_id": _ID,
        "drama_id": _ID,
        "amount": _MONEY,
        "currency": _CUR,
        "kind": {"unlock", "recharge", "subscription"},
    },
    "ad_unlock": {"user_id": _ID, "drama_id": _ID, "revenue": _MONEY, "currency": _CUR},
    "refund": {"order_id": _ID, "amount": _MONEY, "currency": _CUR},
}
TYPES = set(_REQUIRED)


def _number(v: Any) -> Decimal | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return Decimal(repr(v))
    if isinstance(v, str) and _DECIMAL.fullmatch(v):
        try:
            return Decimal(v)
        except InvalidOperation:
            return None
    return None


def _ts(v: Any) -> datetime | None:
    if not isinstance(v, str) or not _TS.fullmatch(v):
        return None
    try:
        return datetime.fromisoformat(v)
    except ValueError:
        return None


def _field_ok(kind: Any, v: Any) -> bool:
    if isinstance(kind, set):
        return v in kind
    if kind == _ID:
        return isinstance(v, str) and 1 <= len(v) <= 128
    if kind == _CUR:
        return isinstance(v, str) and bool(_CURRENCY.fullmatch(v))
    if kind == _TSF:
        return _ts(v) is not None
    if kind == _DATE:
        try:
            return isinstance(v, str) and len(v) == 10 and date.fromisoformat(v) is not None
        except ValueError:
            return False
    d = _number(v)
    if d is None or d < 0 or d >= 10**12:
        return False
    return kind == _RATE or -d.normalize().as_tuple().exponent <= 4


def problem(line: bytes) -> str | None:
    """Why SPEC section 2/4 would reject this line, or None if it is structurally valid."""
    try:
        ev = orjson.loads(line)
    except orjson.JSONDecodeError:
        return "invalid_json"
    if not isinstance(ev, dict):
        return "invalid_json"
    t = ev.get("type")
    if t is not None and t not in TYPES:
        return "unknown_type"
    if t is None or not _field_ok(_ID, ev.get("event_id")) or _ts(ev.get("ts")) is None:
        return "invalid_field"
    sv = ev.get("schema_version")
    if sv is not None and (not isinstance(sv, int) or isinstance(sv, bool)):
        return "invalid_field"
    for name, kind in _REQUIRED[t].items():
        if ev.get(name) is None or not _field_ok(kind, ev[name]):
            return "invalid_field"
    if t == "click" and (ev.get("campaign_id") is None) == (ev.get("plan_id") is None):
        return "invalid_field"
    if t == "click" and not _field_ok(_ID, ev.get("campaign_id") or ev.get("plan_id")):
        return "invalid_field"
    if t == "redirect" and any(ev.get(k) is not None and not _field_ok(_ID, ev[k]) for k in ("click_id", "device_id")):
        return "invalid_field"
    if t == "ad_spend":
        p = _ts(ev["period_start"])
        if p is None or p.minute or p.second or p.microsecond:
            return "invalid_field"
    if t == "fx_rate" and _number(ev["rate"]) == 0:
        return "invalid_field"
    if t == "promotion_plan" and _number(ev["commission_rate"]) > 1:  # type: ignore[operator]
        return "invalid_field"
    return None


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def small() -> list[bytes]:
    return list(generate(SMALL))


@pytest.fixture(scope="module")
def small_events(small: list[bytes]) -> list[dict[str, Any]]:
    """Distinct, valid events of the small run, in output order."""
    seen: set[bytes] = set()
    out = []
    for line in small:
        if line not in seen and problem(line) is None:
            seen.add(line)
            out.append(orjson.loads(line))
    return out


# ---------------------------------------------------------------- tests


def test_same_seed_gives_same_bytes_and_another_seed_does_not(small: list[bytes]) -> None:
    assert list(generate(SMALL)) == small
    other = list(generate(GeneratorConfig(seed=8, days=3, users_per_day=3_000, campaigns=12, plans=6)))
    assert other != small
    assert len(set(other) & set(small)) < len(small) // 20  # configuration may coincide, traffic not


def test_every_line_is_one_newline_terminated_line(small: list[bytes]) -> None:
    assert all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in small)


@pytest.mark.parametrize("events", [40_000, 150_000])
def test_events_sets_the_approximate_size(events: int) -> None:
    n = sum(1 for _ in generate(GeneratorConfig(seed=3, days=2, events=events)))
    assert 0.9 * events <= n <= 1.1 * events


def test_every_spec_event_type_appears(small_events: list[dict[str, Any]]) -> None:
    assert Counter(ev["type"] for ev in small_events).keys() == TYPES


def test_without_malformed_share_every_line_is_valid() -> None:
    cfg = GeneratorConfig(seed=11, days=2, users_per_day=4_000, malformed_share=0.0)
    problems = Counter(problem(line) for line in generate(cfg))
    assert problems.keys() == {None}


def test_malformed_and_duplicate_shares_are_roughly_as_configured() -> None:
    cfg = GeneratorConfig(seed=5, days=1, users_per_day=25_000, malformed_share=0.004, duplicate_share=0.02)
    lines = list(generate(cfg))
    problems = Counter(problem(line) for line in lines)
    bad = sum(v for k, v in problems.items() if k is not None)
    assert 0.003 <= bad / len(lines) <= 0.005
    assert {"invalid_json", "unknown_type", "invalid_field"} <= problems.keys()
    duplicates = len(lines) - len(set(lines))
    assert 0.016 <= duplicates / len(lines) <= 0.024


def test_event_ids_are_unique_across_distinct_lines(small_events: list[dict[str, Any]]) -> None:
    ids = Counter(ev["event_id"] for ev in small_events)
    assert ids.most_common(1)[0][1] == 1


def test_configuration_comes_first_and_covers_the_sources(small_events: list[dict[str, Any]]) -> None:
    kinds = [ev["type"] for ev in small_events]
    first_fact = next(i for i, k in enumerate(kinds) if k not in {"campaign", "promotion_plan", "fx_rate"})
    head = Counter(kinds[:first_fact])
    assert head["campaign"] >= SMALL.campaigns - 1 and head["promotion_plan"] >= SMALL.plans - 1
    platforms = {ev["platform"] for ev in small_events if ev["type"] == "campaign"}
    assert platforms == {"douyin", "kuaishou", "tencent", "tiktok", "other"}
    fx = {ev["currency"] for ev in small_events[:first_fact] if ev["type"] == "fx_rate"}
    assert {"USD", "JPY", "HKD", "TWD"} <= fx
    start = SMALL.start_date.isoformat()
    assert all(ev["effective_date"] <= start for ev in small_events[:first_fact] if ev["type"] == "fx_rate")
    # Some configuration is updated during the run.
    assert any(k in {"campaign", "promotion_plan"} for k in kinds[first_fact:])


def test_traffic_has_the_shapes_attribution_must_handle(small_events: list[dict[str, Any]]) -> None:
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in TYPES}
    for ev in small_events:
        by_type[ev["type"]].append(ev)
    clicks = by_type["click"]
    redirects = by_type["redirect"]
    imps_per_campaign_click = len(by_type["impression"]) / sum("campaign_id" in c for c in clicks)
    assert 2 <= imps_per_campaign_click <= 10
    assert any("plan_id" in c for c in clicks)

    first = {}
    for r in redirects:
        first.setdefault(r["user_id"], r)
    firsts = list(first.values())
    with_click = sum("click_id" in r for r in firsts) / len(firsts)
    device_only = sum("click_id" not in r and "device_id" in r for r in firsts) / len(firsts)
    assert 0.5 <= with_click <= 0.7 and 0.18 <= device_only <= 0.32
    assert {r["host"] for r in redirects} == {"wechat", "douyin", "app"}

    # Clicks more than 7 days before the run, named by some redirects.
    start = datetime.fromisoformat(f"{SMALL.start_date}T00:00:00+08:00")
    old = {c["click_id"] for c in clicks if (start - datetime.fromisoformat(c["ts"])).days >= 7}
    assert old and any(r.get("click_id") in old for r in redirects)

    payments = by_type["payment"]
    assert {p["kind"] for p in payments} == {"unlock", "recharge", "subscription"}
    currencies = Counter(p["currency"] for p in payments)
    assert currencies.most_common(1)[0][0] == "CNY" and "USD" in currencies and "THB" in currencies
    assert any(not isinstance(p["amount"], str) for p in payments)  # some JSON numbers
    orders = Counter(p["order_id"] for p in payments)
    refunds = by_type["refund"]
    assert 0.005 <= len(refunds) / len(orders) <= 0.05
    assert any(r["order_id"] not in orders for r in refunds)

    # Money from users who never redirect, and a payment that arrives before its user's redirect.
    redirected = {r["user_id"] for r in redirects}
    assert any(ev["user_id"] not in redirected for ev in payments + by_type["ad_unlock"])
    position = {}
    for i, ev in enumerate(small_events):
        if ev["type"] in {"redirect", "payment"}:
            position.setdefault((ev["type"], ev["user_id"]), i)
    assert any(position.get(("redirect", u), -1) > i for (t, u), i in position.items() if t == "payment")

    # Hourly spend per campaign, some hours restated later.
    spend = Counter((s["campaign_id"], datetime.fromisoformat(s["period_start"])) for s in by_type["ad_spend"])
    assert len({c for c, _ in spend}) == SMALL.campaigns
    restated = sum(1 for v in spend.values() if v > 1) / len(spend)
    assert 0.02 <= restated <= 0.08
    assert {s["currency"] for s in by_type["ad_spend"]} >= {"CNY", "USD"}

    # Timestamps: both offsets, never fractional seconds.
    stamps = [ev["ts"] for ev in small_events]
    assert any(s.endswith("Z") for s in stamps) and any(s.endswith("+08:00") for s in stamps)
    assert not any("." in s for s in stamps)


def test_output_is_roughly_in_time_order(small_events: list[dict[str, Any]]) -> None:
    facts = [ev for ev in small_events if ev["type"] not in {"campaign", "promotion_plan", "fx_rate"}]
    high = None
    behind = 0
    for ev in facts:
        t = datetime.fromisoformat(ev["ts"]).timestamp()
        if high is not None and t < high - 3600:
            behind += 1
        high = t if high is None else max(high, t)
    assert behind / len(facts) < 0.01


def _traced_peak(cfg: GeneratorConfig) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        for _ in generate(cfg):
            pass
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_number_of_days() -> None:
    # Returning users wait as packed ints: eight times the days, about the same memory.
    peak_1 = _traced_peak(GeneratorConfig(seed=1, days=1, users_per_day=1_000))
    peak_8 = _traced_peak(GeneratorConfig(seed=1, days=8, users_per_day=1_000))
    assert peak_8 < 2 * peak_1


# VmHWM, not ru_maxrss: the latter survives exec and would include pytest's own peak.
_RSS_PROBE = """
from reelroi.generator import GeneratorConfig, generate
def kib(key):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(key))
before = kib("VmRSS")
n = sum(1 for _ in generate(GeneratorConfig(seed=1, days=1, events=500_000)))
print(n, kib("VmHWM") - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_half_a_million_lines_stream_in_little_memory() -> None:
    # Measured in a fresh process at full speed (tracemalloc would take ten times as long).
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    lines, growth_kib = map(int, out.stdout.split())
    assert lines > 450_000
    assert growth_kib < 16 * 1024  # holding the lines would take ~100 MiB; measured: ~5 MiB


# Hashes taken from the single-module generator before it became a package: the split (and any
# later refactoring) must give the same bytes for the same config.
_PINNED = {
    GeneratorConfig(seed=7, days=2, campaigns=12, plans=6, users_per_day=300): (
        5264,
        "13a082fcaf4a43dfba4ec925a2b7d9ac23121dad9f1fa9427f3ae88e065a7132",
    ),
    GeneratorConfig(seed=3, events=5000): (4952, "44615c3bbd51f3762a94b06c53c2b349fa1a3e0a5cf9c9104f400caadeb0a820"),
}


@pytest.mark.parametrize("cfg", list(_PINNED), ids=["users_per_day", "events"])
def test_output_is_pinned_byte_for_byte(cfg: GeneratorConfig) -> None:
    digest = hashlib.sha256()
    lines = 0
    for line in generate(cfg):
        digest.update(line)
        lines += 1
    assert (lines, digest.hexdigest()) == _PINNED[cfg]


# ---------------------------------------------------------------- live traffic (reelroi demo)

_BEGIN = 1_796_130_000  # 2026-12-01 21:40 in Asia/Shanghai, mid-minute


def _live(seed: int, seconds: int, begin: int = _BEGIN) -> list[tuple[int, bytes]]:
    out = []
    for due, line in live(GeneratorConfig(seed=seed, days=2, named_share=1.0), begin, 400):
        if due >= begin + seconds:
            break
        out.append((due, line))
    return out


def test_live_traffic_is_due_at_its_ts_never_before_and_lasts() -> None:
    lines = _live(5, 150)
    dues = [due for due, _ in lines]
    assert dues == sorted(dues) and dues[0] >= _BEGIN and dues[-1] >= _BEGIN + 145
    assert 150 * 400 / 3 < len(lines) < 150 * 400 * 3  # about the rate asked for
    events = []
    for due, line in lines:
        try:
            ev = orjson.loads(line)
            ts = datetime.fromisoformat(ev["ts"])
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            continue  # malformed on purpose
        if ts.tzinfo is not None:
            assert ts.timestamp() <= due
            events.append(ev)
    kinds = Counter(ev["type"] for ev in events)
    assert kinds["ad_spend"] and kinds["payment"] and kinds["redirect"] and kinds["impression"]
    campaigns = [ev for ev in events if ev["type"] == "campaign"]
    assert campaigns and all(ev.get("name") for ev in campaigns)  # every configured campaign is named


def test_live_traffic_is_the_same_for_the_same_seed() -> None:
    assert _live(5, 70) == _live(5, 70)
    assert _live(5, 70) != _live(6, 70)
