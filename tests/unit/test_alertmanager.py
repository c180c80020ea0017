"""Alertmanager's routing config is valid and sends each alert where docs/alert-routing.md says.

Real tools: ``amtool check-config`` and ``amtool config routes test`` (Debian package
prometheus-alertmanager, installed by .ci/run), on infra/alertmanager/alertmanager.yml; the
label sets are those the rules in infra/prometheus/rules/reelroi.yml really give their alerts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "infra/alertmanager/alertmanager.yml"
RULES = ROOT / "infra/prometheus/rules/reelroi.yml"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
ALERTS = {
    rule["alert"]: rule["labels"]
    for group in yaml.safe_load(RULES.read_text())["groups"]
    for rule in group["rules"]
    if "alert" in rule
}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("amtool")
    if exe is None:
        pytest.skip("amtool is not on PATH (CI installs it: Debian package prometheus-alertmanager)")
    return subprocess.run([exe, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


def receivers_for(**labels: str) -> list[str]:
    """The receivers amtool resolves the label set to, in the order of the routing tree."""
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={CONFIG}", *pairs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().split(",")


def test_amtool_checks_the_config() -> None:
    result = amtool("check-config", str(CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # a pipeline page: the generic pager, the on-call WeCom group, the team's DingTalk page group
        ({"alertname": "ReelroiSinkFailing", "severity": "page", "team": "pipeline"},
         ["pager", "wecom-oncall", "dingtalk-pipeline-page"]),
        # a pipeline ticket: the ticket queue and the team's DingTalk group, nobody woken
        ({"alertname": "ReelroiRecordsTooLarge", "severity": "ticket", "team": "pipeline"},
         ["tickets", "dingtalk-pipeline"]),
        # a growth page reaches the growth team's Feishu group, not the pipeline's DingTalk
        ({"alertname": "ReelroiSpendWithoutRedirects", "severity": "page", "team": "growth", "campaign_id": "c1"},
         ["pager", "wecom-oncall", "feishu-growth"]),
        ({"alertname": "ReelroiCampaignRoiBelowFloor", "severity": "ticket", "team": "growth", "campaign_id": "c1"},
         ["tickets", "feishu-growth"]),
        # labels the tree does not know still land somewhere: the default receiver
        ({"alertname": "SomethingElse"}, ["tickets"]),
    ],
)  # fmt: skip
def test_routes(labels: dict[str, str], expected: list[str]) -> None:
    assert receivers_for(**labels) == expected
    verify = amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={','.join(expected)}",
        *[f"{k}={v}" for k, v in labels.items()],
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_a_wrong_expectation_fails_the_verification() -> None:
    # the routes test above would pass vacuously if amtool accepted any expectation
    result = amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=tickets", "severity=page", "team=pipeline"
    )  # fmt: skip
    assert result.returncode != 0


@pytest.mark.parametrize("name", sorted(ALERTS))
def test_every_alert_reaches_a_person_of_its_team_and_severity(name: str) -> None:
    labels = ALERTS[name]
    receivers = receivers_for(alertname=name, **labels)
    assert ("pager" in receivers) == (labels["severity"] == "page"), receivers
    assert ("tickets" in receivers) == (labels["severity"] == "ticket"), receivers
    chat = {"pipeline": "dingtalk-pipeline", "growth": "feishu-growth"}[labels["team"]]
    assert any(r.startswith(chat) for r in receivers), receivers


def test_every_chat_receiver_posts_to_an_adapter_service_of_compose() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    services = COMPOSE["services"]
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            url = urlsplit(hook["url"])
            if url.hostname == "alert-relay":  # the operator's own relay, outside compose
                continue
            assert url.hostname in services, receiver["name"]
            assert str(url.port) in services[url.hostname]["expose"], receiver["name"]
            assert "alertmanager" in COMPOSE["services"] and url.hostname in services["alertmanager"]["depends_on"]


def test_the_dingtalk_targets_rendered_from_the_environment_are_the_ones_alertmanager_calls(tmp_path: Path) -> None:
    # run the dingtalk service's own start script (compose's $$ is a literal $) up to the exec
    service = COMPOSE["services"]["dingtalk"]
    script = service["command"][0].replace("$$", "$").replace("/prometheus-webhook-dingtalk/", f"{tmp_path}/")
    script = script.replace("exec /bin/prometheus-webhook-dingtalk", "exit 0; #")
    env = {
        "PATH": "/usr/bin:/bin",
        "DINGTALK_PAGE_URL": "https://oapi.dingtalk.com/robot/send?access_token=page",
        "DINGTALK_PAGE_SECRET": "SECpage",
        "DINGTALK_TICKET_URL": "https://oapi.dingtalk.com/robot/send?access_token=ticket",
        "DINGTALK_TICKET_SECRET": "SECticket",
    }
    assert set(service["environment"]) == set(env) - {"PATH"}
    subprocess.run(["sh", "-ec", script], env=env, check=True, timeout=30)
    targets = yaml.safe_load((tmp_path / "config.yml").read_text())["targets"]
    assert targets["pipeline-page"] == {"url": env["DINGTALK_PAGE_URL"], "secret": "SECpage", "mention": {"all": True}}
    assert targets["pipeline"] == {"url": env["DINGTALK_TICKET_URL"], "secret": "SECticket"}
    config = yaml.safe_load(CONFIG.read_text())
    called = {
        urlsplit(hook["url"]).path.split("/")[2]
        for receiver in config["receivers"]
        for hook in receiver["webhook_configs"]
        if urlsplit(hook["url"]).hostname == "dingtalk"
    }
    assert called == set(targets)


def test_no_secret_is_written_in_the_routing_config_or_compose() -> None:
    text = CONFIG.read_text()
    assert "access_token=" not in text and "hook/" not in text and "key=" not in text
    compose = (ROOT / "docker-compose.yml").read_text()
    for variable in ("DINGTALK_PAGE_SECRET", "DINGTALK_TICKET_SECRET", "FEISHU_WEBHOOK_URL", "WECOM_WEBHOOK_URL"):
        assert f"${{{variable}:-}}" in compose  # from the environment, empty by default: never a value in the file
    assert "PROMETHEUS_ALERT_PASSWORD:?" in compose
