"""Hostile lines through ``reelroi replay`` (engine, sink, ClickHouse, reports) against the reference.

The SPEC worked example is mixed with the fuzz corpus, a sample of generated
hostile lines and lines over the size limit: the replay must succeed, every
rejected line must keep its bytes, and all three reports must equal the
independent implementation's over the same bytes (lines it cannot judge the
way SPEC allows us to, deeper than 64 levels, are counted as ours: invalid_json).

The hostile templates all carry event_id ``e1``; each line gets an id of its
own here, since SPEC 3.5 leaves open which of two *different* events sharing
an id counts, and lets an implementation that splits work by key (ours) count
both: what these tests judge is decoding, not id collisions
(tests/unit/test_stages.py covers copies of one event).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.hostile import CORPUS, event, hostile_lines
from tests.integration.test_against_oracle import DATA, assert_same
from tests.reference.spec_oracle import read_event_lines, reference_reports
from tests.unit.test_fuzz_decode import comparable, ours

pytestmark = pytest.mark.integration


def expected_reports(lines: list[bytes], ours_only: Counter[str]) -> dict:  # type: ignore[type-arg]
    """The reference's reports over ``lines``, plus rejections only we can judge."""
    expected = reference_reports(lines)
    rejected = Counter(expected["rejects"]["rejected"]) + ours_only
    expected["rejects"]["rejected"] = dict(sorted(rejected.items()))
    return expected


def own_ids(lines: list[bytes]) -> list[bytes]:
    """Each hostile line with its own event_id instead of the templates' shared ``e1``."""
    return [ln.replace(b'"event_id":"e1"', b'"event_id":"h%d"' % i) for i, ln in enumerate(lines)]


def replay_and_compare(store, lines: list[bytes], big: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    # a line the reference cannot judge as SPEC allows is replayed only if we reject it
    # (its reason is then counted as ours), so the money never depends on it
    judged = [ln for ln in lines if comparable(ln)]
    ours_only = Counter(reason for ln in lines if not comparable(ln) and (reason := ours(ln)) != "ok")
    rejected_only = [ln for ln in lines if not comparable(ln) and ours(ln) != "ok"]
    path = store.write([*judged, *rejected_only, *big])
    store.replay_files(path, extra=("--max-line-bytes", "65536"))
    ours_only["too_large"] += len(big)
    assert_same(store.reports(), expected_reports(read_event_lines(store.write(judged)), ours_only))


def test_corpus_and_spec_example(store) -> None:  # type: ignore[no-untyped-def]
    spec = (DATA / "spec_example.jsonl").read_bytes().splitlines()
    corpus = own_ids([raw for _, raw, _ in CORPUS if b"\n" not in raw])
    lines = spec + corpus
    random.Random(4).shuffle(lines)
    big = [event("payment", event_id='"big"', extra='"' + "x" * 100_000 + '"')]
    replay_and_compare(store, lines, big)
    code, _, err = store.run("rejects", "--db", store.dsn, "--show", "200")
    assert code == 0
    assert "too_large" in err


@settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(hostile_lines.filter(lambda b: b"\n" not in b), min_size=20, max_size=80))
def test_generated_hostile_lines(store, lines: list[bytes]) -> None:  # type: ignore[no-untyped-def]
    store.new_database()
    spec = (DATA / "spec_example.jsonl").read_bytes().splitlines()
    replay_and_compare(store, spec + own_ids(lines), [])
