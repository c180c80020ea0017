"""SPEC 5: every report states its policy and as_of, and no unfinished figure reads like a final one."""

from __future__ import annotations

import csv
import io

import pytest

from tests.integration.test_against_oracle import DATA

pytestmark = pytest.mark.integration


@pytest.fixture
def worked_example(store):  # type: ignore[no-untyped-def]
    store.replay_files(DATA / "spec_example.jsonl")
    return store


def test_json_rows_name_their_unfinished_figures(worked_example) -> None:  # type: ignore[no-untyped-def]
    # as_of is the refund at 2026-11-04T10:00+08:00: D0 and D1 of the 11-02 cohorts are over, D3 and D7 are not
    rows = worked_example.roi()
    assert {r["source_id"]: r["unfinished"] for r in rows} == {
        "cA": ["revenue_d3", "revenue_d7", "roi_d7"],
        "pB": ["revenue_d3", "revenue_d7", "roi_d7"],
        "organic": ["revenue_d3", "revenue_d7", "roi_d7"],
    }


def test_a_replay_of_old_history_is_final(store) -> None:  # type: ignore[no-untyped-def]
    later = b'{"type":"impression","event_id":"late","ts":"2026-12-01T00:00:00Z","campaign_id":"cX","device_id":"dz"}'
    store.replay([*(DATA / "spec_example.jsonl").read_bytes().splitlines(), later])
    assert all(r["unfinished"] == [] for r in store.roi())


def test_table_heading_and_marks(worked_example) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = worked_example.run("roi", "--db", worked_example.dsn)
    assert code == 0
    heading, *_ = out.splitlines()
    for part in ("amounts in CNY", "dates in Asia/Shanghai", "click window 7d", "as of 2026-11-04T10:00:00+08:00"):
        assert part in heading
    line = next(ln for ln in out.splitlines() if ln.startswith("campaign"))
    assert "30.00  " in line and "20.00*" in line and "0.2500*" in line and "0.3750 " in line
    assert "not final" in out.splitlines()[-1]


def test_csv_carries_the_policy_and_as_of(worked_example) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = worked_example.run("commission", "--db", worked_example.dsn, "--format", "csv")
    assert code == 0
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["commission"] == "21.30"
    assert (row["currency"], row["tz"], row["as_of"]) == ("CNY", "Asia/Shanghai", "2026-11-04T10:00:00+08:00")
    code, out, _ = worked_example.run("roi", "--db", worked_example.dsn, "--format", "csv", "--source-kind", "campaign")
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["revenue_d7"] == "20.00" and row["unfinished"] == "revenue_d3 revenue_d7 roi_d7"


def test_reports_warn_when_the_rates_quote_another_currency(worked_example) -> None:  # type: ignore[no-untyped-def]
    code, _, err = worked_example.run("roi", "--db", worked_example.dsn)
    assert code == 0 and "warning" not in err
    code, _, err = worked_example.run("reattribute", "--db", worked_example.dsn, "--currency", "USD")
    assert code == 0
    code, out, err = worked_example.run("roi", "--db", worked_example.dsn)
    assert "amounts in USD" in out
    assert "1 fx_rate event(s) give USD, the reporting currency, a rate other than 1" in err


def test_a_rate_of_1_for_the_reporting_currency_is_no_warning(store) -> None:  # type: ignore[no-untyped-def]
    from reelroi.generator import GeneratorConfig, generate

    store.replay(list(generate(GeneratorConfig(seed=3, events=2_000))))  # holds a CNY rate of 1.0
    code, _, err = store.run("roi", "--db", store.dsn)
    assert code == 0 and "warning" not in err
