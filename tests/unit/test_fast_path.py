"""The router's fast path agrees with pydantic on every line it decides, and decides the common ones.

``attribution/stages/fast_path.py`` may only ever be a shortcut: for any line
it accepts, the router's facts and stage records must be exactly (``repr``
equal: the same Decimal digits, the same ticks) those of the pydantic path;
every line it refuses is judged by ``schemas.decode``. Checked on generated
traffic, the SPEC example, the hostile corpus, and hypothesis's hostile events
(fields replaced, dropped, repeated, added; derandomized, like the fuzz suite).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.clock import to_ticks
from attribution.policy import Policy
from attribution.stages.fast_path import _shaped_ticks, fast_decode, plain_ticks
from attribution.stages.router import Router
from reelroi.generator import GeneratorConfig, generate
from schemas.decode import Invalid, decode
from schemas.fields import parse_timestamp
from schemas.framing import Record
from tests.hostile import CORPUS, event, hostile_events, hostile_lines

SPEC_EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "spec_example.jsonl"
FUZZ = settings(
    max_examples=1500,
    deadline=None,
    derandomize=not os.environ.get("REELROI_FUZZ_EXPLORE"),
    suppress_health_check=[HealthCheck.too_slow],
)
FAST_TYPES = {"impression", "click", "redirect", "payment", "ad_unlock", "refund"}


def routed(raw: bytes, fast: bool, postbacks: bool = True) -> str:
    router = Router(Policy(), postbacks=postbacks, fast=fast)
    return repr(router.route([Record("t:1", raw)]))


def agrees(raw: bytes) -> bool:
    """True when the fast path decided the line; asserts it decided it exactly as pydantic does."""
    found = fast_decode(raw)
    if found is None:
        return False
    event = decode(raw)
    assert not isinstance(event, Invalid), (raw, event)  # never accept what pydantic rejects
    assert found[:2] == (event.type, event.event_id)
    assert routed(raw, fast=True) == routed(raw, fast=False), raw
    return True


def test_generated_traffic_takes_the_fast_path_and_agrees() -> None:
    lines = [line.rstrip(b"\n") for line in generate(GeneratorConfig(seed=3, days=1, users_per_day=1_500))]
    decided = [agrees(line) for line in lines]
    fast_typed = [json.loads(line).get("type") in FAST_TYPES for line in lines if not isinstance(decode(line), Invalid)]
    # nearly every valid line of a fast type is decided here (money as a JSON fraction and such are not)
    assert sum(decided) >= 0.97 * sum(fast_typed), (sum(decided), sum(fast_typed))


def test_spec_example_agrees() -> None:
    for line in SPEC_EXAMPLE.read_bytes().splitlines():
        agrees(line)


def test_hostile_corpus_agrees() -> None:
    for _name, raw, _expected in CORPUS:
        agrees(raw)


def test_edges_the_fast_path_refuses() -> None:
    refused = [
        event("payment", amount="1.5"),  # a JSON fraction: its exact text is the slow path's
        event("click", plan_id='"p1"'),  # both sources
        b'{"type":"impression","event_id":"e","ts":"2026-11-01T08:00:00Z","campaign_id":"c","device_id":"d",'
        b'"schema_version":1}',
        event("impression", campaign_id='"' + "x" * 129 + '"'),
        event("redirect", host='"web"'),
        event("payment").replace(b'"kind":"unlock"', b'"kind":"gift"'),
        event("ad_unlock", currency='"cny"'),
        event("refund", amount='"-1"'),
        event("impression", ts='"2026-11-01 08:00:00"'),
        event("click", device_id="null"),
        event("campaign"),  # configuration: always the slow path
        # what msgspec would read and orjson (the slow path's parser) would not: bytes that are not UTF-8 in a
        # field no struct names (msgspec skips it unchecked)
        event("impression", note='"N"').replace(b'"N"', b'"\xff"'),
        event("impression", note='"N"').replace(b'"N"', b'"\xed\xa0\x80"'),  # a surrogate, encoded
        event("impression").replace(b'{"type":"impression"', b'{"type":"click","type":"impression"'),  # repeated type
        event("impression").replace(b"}", b',"schema\\u005fversion":1}'),  # an escaped key is the same key
    ]
    assert b'"gift"' in refused[5] and b"\xff" in refused[11]  # the replaces above took
    for raw in refused:
        assert fast_decode(raw) is None, raw
        assert routed(raw, fast=True) == routed(raw, fast=False)
    accepted = [
        event("impression", campaign_id='"' + "长" * 128 + '"'),  # 128 characters, not bytes
        event("click", plan_id="null"),  # null is absent
        event("payment", amount="7"),  # a JSON integer
        event("payment", amount='"0.12340000"'),  # trailing zeros do not count as places
        event("impression", ts='"2026-11-01T08:00:00.123456789+08:00"'),  # beyond the microsecond
        event("impression", note="1e400"),  # a number no float holds, in a field no struct names: valid JSON
        event("impression", device_id='"d1"').replace(b"}", b',"device_id":"d2"}'),  # a repeated key: the last
    ]
    for raw in accepted:
        assert agrees(raw), raw


@FUZZ
@given(hostile_events() | hostile_lines | st.sampled_from(sorted(FAST_TYPES)).map(lambda k: event(k)))
def test_hostile_lines_agree(raw: bytes) -> None:
    agrees(raw)


DIGITS = (
    st.integers(0, 99).map("{:02d}".format)
    | st.integers(0, 12).map("{:02d}".format)
    | st.text("0123456789", max_size=3)
)
STAMPS = st.builds(
    lambda y, mo, d, h, mi, s, frac, sep, zone: f"{y:04d}-{mo}-{d}{sep}{h}:{mi}:{s}{frac}{zone}",
    st.integers(0, 10_000) | st.sampled_from([1, 2, 1970, 2026, 9998, 9999]),
    DIGITS, DIGITS, DIGITS, DIGITS, DIGITS,
    st.just("") | st.text("0123456789", min_size=0, max_size=22).map(lambda f: "." + f),
    st.sampled_from(["T", "T", "t", " "]),
    st.sampled_from(["Z", "Z", "z", ""]) | st.builds(lambda s, h, m: f"{s}{h}:{m}", st.sampled_from("+-"), DIGITS, DIGITS),
)  # fmt: skip


@FUZZ
@given(STAMPS | st.text(max_size=40))
def test_plain_ticks_is_parse_timestamp_where_it_answers(text: str) -> None:
    ticks = plain_ticks(text)
    if ticks is not None:
        assert ticks == to_ticks(parse_timestamp(text)), text


def test_plain_ticks_by_the_minute_is_the_same_instant_for_every_second() -> None:
    """A minute is judged once and cached (``_minutes``): each second of it, and each invalid second, as uncached."""
    for minute, rest in (("2026-11-02T16:55", "+08:00"), ("2026-11-02T16:55", "Z"), ("2026-02-29T00:00", "Z"),
                         ("2026-11-02T16:55", ".1234Z"), ("9998-12-31T23:59", "-23:59")):  # fmt: skip
        for second in [f"{n:02d}" for n in range(61)] + ["6a", "٣٣", "-1"]:
            text = f"{minute}:{second}{rest}"
            expected = _shaped_ticks(text)
            assert plain_ticks(text) == expected == plain_ticks(text), text
            if expected is not None:
                assert expected == to_ticks(parse_timestamp(text)), text
    assert plain_ticks("2026-02-29T00:00:00Z") is None  # not a leap year: the minute is invalid whatever the second


def test_plain_ticks_takes_the_common_shapes() -> None:
    for text in ("2026-11-02T16:55:12+08:00", "2026-11-02T16:55:12.123456789012345678Z", "0002-01-01T00:00:00-23:59"):
        assert plain_ticks(text) == to_ticks(parse_timestamp(text)), text
    for text in ("2026-02-30T00:00:00Z", "2026-11-02T24:00:00Z", "2026-11-02T16:55:12+24:00", "0001-01-01T00:00:00Z"):
        assert plain_ticks(text) is None, text


ID_FIELDS = {
    "impression": ["campaign_id", "device_id"],
    "click": ["click_id", "device_id", "campaign_id"],
    "redirect": ["user_id", "app_id", "click_id", "device_id"],
    "payment": ["order_id", "user_id", "drama_id"],
    "ad_unlock": ["user_id", "drama_id"],
    "refund": ["order_id"],
}


def test_every_id_field_takes_1_to_128_characters_as_pydantic_does() -> None:
    """Each id of each fast type, and the event_id: 1 and 128 characters accepted, empty and 129 refused."""
    for kind, names in ID_FIELDS.items():
        for name in [*names, "event_id"]:
            for length, ok in ((1, True), (128, True), (0, False), (129, False)):
                base = {"revenue": '"0.5"'} if kind == "ad_unlock" else {}  # a JSON fraction is the slow path's
                raw = event(kind, **base, **{name: json.dumps("é" * length)})
                assert (fast_decode(raw) is not None) is ok, (kind, name, length)
                assert routed(raw, fast=True) == routed(raw, fast=False), (kind, name, length)
