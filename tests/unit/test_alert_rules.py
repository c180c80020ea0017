"""The alert rules, their promtool tests, the runbook and the dashboards agree with each other
and with the metrics reelroi exports.

Files: infra/prometheus/rules/reelroi.yml, infra/prometheus/tests/*.yml,
docs/alerts.md, infra/grafana/dashboards/*.json (the Prometheus ones; history.json reads
ClickHouse and is checked by tests/integration/test_grafana_sql.py). Alertmanager's routing
of the severity and team labels: tests/unit/test_alertmanager.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "infra/prometheus/rules/reelroi.yml"
RULE_TESTS = sorted((ROOT / "infra/prometheus/tests").glob("*.yml"))
PROMETHEUS_CONFIG = ROOT / "infra/prometheus/prometheus.yml"
RUNBOOK = ROOT / "docs/alerts.md"
METRICS_DOC = ROOT / "docs/metrics.md"  # the list of exported metrics, linked from the runbook
DASHBOARDS = [ROOT / "infra/grafana/dashboards" / name for name in ("money.json", "pipeline.json")]  # Prometheus
DATASOURCES = ROOT / "infra/grafana/provisioning/datasources/prometheus.yml"
RUNBOOK_BASE = "https://github.com/reelroi/reelroi/blob/main/docs/alerts.md"
SEVERITIES = {"page", "ticket"}
TEAMS = {"pipeline", "growth"}  # routed by infra/alertmanager/alertmanager.yml


# What reelroi exports, read from the metric objects themselves (name -> type): pipeline
# metrics from each worker (streams/metrics.py, streams/stage_metrics.py) and the sink
# (streams/sink_stage.py), business signals from the watcher (streams/watcher.py, in
# `reelroi serve`), undecodable batches (streams/codecs.py), postbacks from the sender
# (streams/postback_sender.py, `reelroi postback`).
def _exported() -> dict[str, str]:
    from streams import codecs, metrics, postback_sender, sink_stage, stage_metrics, watcher

    found = {}
    for module in (metrics, stage_metrics, sink_stage, watcher, codecs, postback_sender):
        for value in vars(module).values():
            if isinstance(value, Counter | Gauge | Histogram):
                kind = value._type
                found[value._name + ("_total" if kind == "counter" else "")] = kind
    return found


EXPORTED_METRICS = _exported()
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"(?<![\w:])reelroi_[a-z0-9_]*[a-z0-9]")

RULE_GROUPS = yaml.safe_load(RULES.read_text())["groups"]
ALERTS = {rule["alert"]: rule for group in RULE_GROUPS for rule in group["rules"] if "alert" in rule}
TEST_FILES = {path.name: yaml.safe_load(path.read_text()) for path in RULE_TESTS}
TESTS = {"tests": [test for tests in TEST_FILES.values() for test in tests["tests"]]}


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("promtool")
    if exe is None:
        pytest.skip("promtool is not on PATH (CI installs it: Debian package prometheus)")
    return subprocess.run([exe, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300)


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives the headings of a markdown page."""
    anchors = set()
    fenced = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        heading = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def unknown_metrics(expressions: list[str]) -> set[str]:
    unknown = set()
    for expr in expressions:
        for name in METRIC_NAME.findall(expr):
            base = next((name.removesuffix(s) for s in HISTOGRAM_SERIES if name.endswith(s)), name)
            if name not in EXPORTED_METRICS and EXPORTED_METRICS.get(base) != "histogram":
                unknown.add(name)
    return unknown


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def alert_cases() -> list[tuple[str, bool]]:
    """(alertname, fires) for every alert_rule_test case in the promtool test file."""
    return [
        (case["alertname"], bool(case.get("exp_alerts")))
        for test in TESTS["tests"]
        for case in test.get("alert_rule_test", [])
    ]


# ---------------------------------------------------------------- (a) promtool


def test_promtool_checks_the_rules() -> None:
    result = promtool("check", "rules", RULES)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_checks_the_prometheus_config() -> None:
    result = promtool("check", "config", "--syntax-only", PROMETHEUS_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_unit_tests_load_this_rules_file() -> None:
    assert len(TEST_FILES) >= 3
    for path in RULE_TESTS:
        assert [(path.parent / f).resolve() for f in TEST_FILES[path.name]["rule_files"]] == [RULES], path.name


# ------------------------------------------------------- (b) labels and runbook


def test_there_are_alerts() -> None:
    assert len(ALERTS) >= 10
    assert all(name.startswith("Reelroi") for name in ALERTS)


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_severity_summary_and_runbook(name: str) -> None:
    rule = ALERTS[name]
    assert rule.get("labels", {}).get("severity") in SEVERITIES
    assert rule["labels"].get("team") in TEAMS, f"{name}: a team label, for Alertmanager's routing"
    summary = rule.get("annotations", {}).get("summary", "")
    assert "{{" in summary, f"{name}: the summary should carry the values that made it fire"
    assert rule["annotations"].get("runbook_url") == f"{RUNBOOK_BASE}#{name.lower()}"


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_runbook_has_a_section_for_the_alert(name: str) -> None:
    assert name.lower() in github_anchors(RUNBOOK.read_text()), f"docs/alerts.md needs a heading '### {name}'"


# ---------------------------------------------------- (c) promtool test coverage


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_alert_has_a_firing_and_a_silent_case(name: str) -> None:
    cases = alert_cases()
    assert (name, True) in cases, f"no promtool case where {name} fires"
    assert (name, False) in cases, f"no promtool case where {name} stays silent (exp_alerts: [])"


def test_promtool_cases_name_only_existing_alerts() -> None:
    # promtool passes `exp_alerts: []` for an alert name that does not exist: a typo would pass silently
    assert {name for name, _ in alert_cases()} <= set(ALERTS)


def test_firing_cases_expect_the_severity_and_runbook() -> None:
    for test in TESTS["tests"]:
        for case in test.get("alert_rule_test", []):
            rule = ALERTS[case["alertname"]]
            for alert in case.get("exp_alerts") or []:
                assert alert["exp_labels"]["severity"] == rule["labels"]["severity"], test["name"]
                assert alert["exp_annotations"]["runbook_url"] == rule["annotations"]["runbook_url"], test["name"]


# ------------------------------------------------------- (d) metric names


def test_rules_use_only_exported_metrics() -> None:
    texts = []
    for group in RULE_GROUPS:
        for rule in group["rules"]:
            texts.append(rule["expr"])
            texts.extend(rule.get("annotations", {}).values())  # templates may query
    assert unknown_metrics(texts) == set()


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_use_only_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    exprs = [t.get("expr", "") for p in dashboard_panels(dashboard) for t in p.get("targets", [])]
    exprs += [a.get("expr", "") for a in dashboard.get("annotations", {}).get("list", [])]
    assert unknown_metrics(exprs) == set()


def test_runbook_lists_every_exported_metric() -> None:
    listed = set(re.findall(r"^\| `(reelroi_\w+)` \|", METRICS_DOC.read_text(), flags=re.MULTILINE))
    assert listed == set(EXPORTED_METRICS)


# ---------------------------------------------------------- (e) dashboards


def test_there_are_the_three_dashboards() -> None:
    every = sorted((ROOT / "infra/grafana/dashboards").glob("*.json"))
    assert [p.name for p in every] == ["history.json", "money.json", "pipeline.json"]
    uids = [json.loads(p.read_text())["uid"] for p in every]
    assert len(set(uids)) == len(uids)


def test_the_provisioned_datasource_has_the_uid_the_panels_use() -> None:
    (source,) = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert (source["uid"], source["type"], source["url"]) == ("prometheus", "prometheus", "http://prometheus:9090")
    assert source["isDefault"]  # the one default; clickhouse.yml's is not


def test_the_pipeline_dashboard_shows_what_the_intake_could_not_decode() -> None:
    pipeline = json.loads(DASHBOARDS[1].read_text())
    exprs = " ".join(t["expr"] for p in dashboard_panels(pipeline) for t in p["targets"])
    assert "reelroi_undecodable_batches_total" in exprs
    assert 'reason=~"internal_error|too_large"' in exprs


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_panel_queries_prometheus(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["schemaVersion"] >= 36
    panels = dashboard_panels(dashboard)
    assert panels
    ids = [p["id"] for p in panels]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    for panel in panels:
        where = f"{path.name}: {panel.get('title')!r}"
        assert panel.get("datasource", {}).get("uid") == "prometheus", where
        assert panel.get("targets"), where
        for target in panel["targets"]:
            assert target.get("expr", "").strip(), where
            assert target.get("datasource", {}).get("uid", "prometheus") == "prometheus", where
        assert {"x", "y", "w", "h"} <= set(panel.get("gridPos", {})), where
