"""Every SQL panel of the Grafana history dashboard runs on a real reelroi database and returns rows.

The database is built by ``reelroi replay`` of the SPEC worked example on the embedded
ClickHouse; the plugin's time macros become a fixed range around it, and the compose
database name (``reelroi.``) becomes this test's database.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from sinks.connection import connect

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = json.loads((ROOT / "infra/grafana/dashboards/history.json").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
EXAMPLE = ROOT / "tests/data/spec_example.jsonl"
TZ = COMPOSE["x-policy-env"]["REELROI_TZ"]  # the zone every service reports in
# the dashboard's range around the worked example (its events fall on 2026-11-01..03)
MACROS = {
    "$__fromTime": f"toDateTime64('2026-10-01 00:00:00', 3, '{TZ}')",
    "$__toTime": f"toDateTime64('2026-11-30 00:00:00', 3, '{TZ}')",
}


def sql_targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in DASHBOARD["panels"]
        for target in panel.get("targets", [])
        if "rawSql" in target
    ]


def runnable(sql: str, database: str) -> str:
    for macro, value in MACROS.items():
        sql = sql.replace(macro, value)
    assert "$" not in sql, f"a Grafana macro or variable this test does not know: {sql}"
    return re.sub(r"\breelroi\.", f"{database}.", sql)


def run_panels(store: Any) -> dict[str, list[dict[str, Any]]]:
    """Each SQL panel's rows (as dicts) on the store's database after a replay of the example."""
    store.replay_files(EXAMPLE)
    client = connect(store.dsn)
    out = {}
    for title, target in sql_targets():
        result = client.query(runnable(target["rawSql"], store.database))
        out[title] = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
    return out


def test_the_dashboard_has_sql_panels_on_the_clickhouse_datasource() -> None:
    targets = sql_targets()
    assert len(targets) >= 5
    for title, target in targets:
        assert target["datasource"] == {"type": "grafana-clickhouse-datasource", "uid": "clickhouse"}, title
        assert target["editorType"] == "sql" and target["format"] in (0, 1), title
        assert target["queryType"] == ("timeseries" if target["format"] == 0 else "table"), title


def test_every_table_is_read_from_the_compose_database() -> None:
    database = COMPOSE["services"]["clickhouse"]["environment"]["CLICKHOUSE_DB"]
    for title, target in sql_targets():
        for name in re.findall(r"\b(?:FROM|JOIN)\s+\(?\s*([\w.]+)", target["rawSql"]):
            if name.upper() != "SELECT":
                assert name.startswith(f"{database}."), f"{title}: {name}"
        assert TZ in target["rawSql"], f"{title}: local dates must be in REELROI_TZ ({TZ})"


def test_every_panel_runs_and_returns_rows_on_the_worked_example(store) -> None:  # type: ignore[no-untyped-def]
    results = run_panels(store)
    assert set(results) == {title for title, _ in sql_targets()}
    empty = [title for title, rows in results.items() if not rows]
    assert not empty, f"panels with no rows on the worked example: {empty}"

    daily = results["Daily cohorts × platform"]
    assert {row["platform"] for row in daily} <= {"douyin", "kuaishou", "tencent", "tiktok", "other", "unknown"}
    assert any(row["roi_d0"] is not None for row in daily)
    # final by the data's clock, not the picker's range: as_of is the refund at 2026-11-04T10:00+08:00,
    # so D1 of the 11-02 cohorts is over and D3 and D7 are not, though the range runs to 11-30
    assert any(row["roi_d1"] is not None for row in daily)
    assert all(row["roi_d3"] is None and row["roi_d7"] is None for row in daily)
    weekly = results["D0 ROI by platform, weekly cohorts"]
    assert sum(row["roi_d0"] or 0 for row in weekly) > 0

    # the same figures as `reelroi roi` for each campaign cohort (one campaign per platform here)
    for report in store.roi("--source-kind", "campaign"):
        [row] = [r for r in daily if str(r["cohort_date"]) == report["cohort_date"]]
        assert row["spend"] == pytest.approx(float(report["spend"]))
        assert row["roi_d0"] == pytest.approx(float(report["roi_d0"]))
        assert row["roi_total"] == pytest.approx(float(report["roi_total"]))
