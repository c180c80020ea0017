"""docker-compose.yml cannot run here; check that it names only what reelroi really reads."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from reelroi.cli import build_parser
from reelroi.settings import ClickHouseSettings, ReelroiSettings
from streams.kafka_settings import KafkaSettings
from streams.metrics import MetricsSettings
from streams.postback_sender import PostbackSettings as SenderSettings
from streams.sink_stage import SinkSettings
from streams.stages import PostbackSettings, StageSettings
from streams.watcher import WatchSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
REELROI_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}


def known_variables() -> set[str]:
    names = set()
    for cls in (ReelroiSettings, ClickHouseSettings, KafkaSettings, MetricsSettings, WatchSettings, StageSettings,
                SinkSettings, PostbackSettings, SenderSettings):  # fmt: skip
        prefix = cls.model_config["env_prefix"]
        names |= {(prefix + field).upper() for field in cls.model_fields}
    # read by the CLI itself (reelroi/cli_stream.py, reelroi/cli.py)
    return names | {"REELROI_HOST", "REELROI_PORT", "REELROI_LOG_LEVEL", "REELROI_SINK_METRICS_PORT",
                    "REELROI_POSTBACK_METRICS_PORT"}  # fmt: skip


def test_every_reelroi_variable_is_one_reelroi_reads() -> None:
    known = known_variables()
    for name, service in REELROI_SERVICES.items():
        unknown = {k for k in service.get("environment", {}) if k.startswith("REELROI_")} - known
        assert not unknown, f"{name} sets variables reelroi never reads: {unknown}"


@pytest.mark.parametrize("name", sorted(REELROI_SERVICES))
def test_every_command_parses_with_the_real_cli(name: str) -> None:
    service = REELROI_SERVICES[name]
    entry = service.get("entrypoint", ["reelroi"])
    argv = [*entry[1:], *service.get("command", [])]
    if name == "replay":
        argv.append("/data/events.jsonl.gz")
    build_parser().parse_args(argv)  # exits (fails the test) on an unknown command or option


def test_addresses_point_at_the_declared_services_and_ports() -> None:
    env = REELROI_SERVICES["sink"]["environment"]
    dsn = urlsplit(env["REELROI_DB"])
    assert dsn.hostname in SERVICES and dsn.port == 8123
    assert f"{dsn.port}:{dsn.port}" in SERVICES[dsn.hostname]["ports"]
    assert dsn.path.strip("/") == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_DB"]
    assert dsn.username == SERVICES["clickhouse"]["environment"]["CLICKHOUSE_USER"]
    for name in ("worker", "sink", "topics"):
        host, port = REELROI_SERVICES[name]["environment"]["REELROI_KAFKA_BOOTSTRAP"].split(":")
        assert host in SERVICES
        assert f"PLAINTEXT://{host}:{port}" == SERVICES[host]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    api = REELROI_SERVICES["api"]
    port_arg = api["command"][api["command"].index("--port") + 1]
    assert f"{port_arg}:{port_arg}" in api["ports"]
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


def test_workers_need_only_kafka_and_a_shared_state_volume() -> None:
    worker = REELROI_SERVICES["worker"]
    env = worker["environment"]
    assert not {k for k in env if k.startswith(("REELROI_DB", "REELROI_CLICKHOUSE_"))}  # they never open ClickHouse
    assert "clickhouse" not in worker["depends_on"] and "kafka" in worker["depends_on"]
    assert worker["deploy"]["replicas"] >= 2
    # where the checkpoints go (StageSettings.state_dir) is a named volume: every replica mounts the same one
    [volume] = [v.split(":")[0] for v in worker["volumes"] if v.split(":")[1] == env["REELROI_STAGE_STATE_DIR"]]
    assert volume in COMPOSE["volumes"] and "state_dir" in StageSettings.model_fields
    sinks = [name for name, s in REELROI_SERVICES.items() if s.get("command", [None])[0] == "sink"]
    assert sinks == ["sink"] and "clickhouse" in REELROI_SERVICES["sink"]["depends_on"]


def test_the_image_installs_every_package_reelroi_ships() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("schemas", "attribution", "sinks", "streams", "reelroi", "infra"):
        assert f"COPY {package} {package}" in dockerfile


def test_prometheus_scrapes_the_ports_reelroi_serves_metrics_on() -> None:
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    worker = REELROI_SERVICES["worker"]
    [sd] = jobs["reelroi-worker"]["dns_sd_configs"]
    assert sd["names"] == ["worker"] and str(sd["port"]) == worker["environment"]["REELROI_METRICS_PORT"]
    assert worker["environment"]["REELROI_METRICS_HOST"] == "0.0.0.0"  # reachable from the prometheus container
    assert MetricsSettings(port=int(worker["environment"]["REELROI_METRICS_PORT"])).port == sd["port"]
    sink = REELROI_SERVICES["sink"]
    [sd] = jobs["reelroi-sink"]["dns_sd_configs"]
    assert sd["names"] == ["sink"] and str(sd["port"]) == sink["environment"]["REELROI_SINK_METRICS_PORT"]
    assert sink["environment"]["REELROI_METRICS_HOST"] == "0.0.0.0" and str(sd["port"]) in sink["expose"]
    api = REELROI_SERVICES["api"]
    port = api["command"][api["command"].index("--port") + 1]
    assert jobs["reelroi-api"]["static_configs"][0]["targets"] == [f"api:{port}"]
    assert jobs["reelroi-api"]["metrics_path"] == "/metrics"
    [am] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    host, am_port = am.split(":")
    assert host in SERVICES and f"{am_port}:{am_port}" in SERVICES[host]["ports"]


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "grafana"])
def test_monitoring_services_mount_files_that_exist(name: str) -> None:
    service = SERVICES[name]
    mounts = [v for v in service["volumes"] if v.startswith("./")]
    assert mounts
    for mount in mounts:
        assert (ROOT / mount.split(":")[0]).exists(), mount
    assert "healthcheck" in service or "depends_on" in service


def test_prometheus_loads_the_rules_directory_it_mounts() -> None:
    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    mounted = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"] if v.startswith("./")}
    [pattern] = config["rule_files"]
    directory = pattern.rsplit("/", 1)[0]
    assert mounted[directory] == "./infra/prometheus/rules"
    assert list((ROOT / "infra/prometheus/rules").glob("*.yml"))


def test_business_series_are_scraped_with_the_token_reelroi_checks() -> None:
    from streams.metrics import BUSINESS_PATH, PIPELINE_PATH

    config = yaml.safe_load((ROOT / "infra/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for job in ("reelroi-worker", "reelroi-sink", "reelroi-api"):
        assert jobs[job].get("metrics_path", "/metrics") == PIPELINE_PATH and "authorization" not in jobs[job]
    business = jobs["reelroi-business"]
    assert business["metrics_path"] == BUSINESS_PATH
    # the same targets as the open jobs of the processes that run a watcher: the sink and the API
    assert business["dns_sd_configs"] == jobs["reelroi-sink"]["dns_sd_configs"]
    assert business["static_configs"] == jobs["reelroi-api"]["static_configs"]
    auth = business["authorization"]
    assert auth.get("type", "Bearer") == "Bearer" and "credentials" not in auth  # never the secret in the file
    secret = auth["credentials_file"].removeprefix("/run/secrets/")
    assert secret in SERVICES["prometheus"]["secrets"]
    source = COMPOSE["secrets"][secret]["environment"]
    for name in ("sink", "api"):  # reelroi reads the very variable the secret is made from
        assert REELROI_SERVICES[name]["environment"]["REELROI_METRICS_TOKEN"].startswith(f"${{{source}:?")
    assert MetricsSettings(token="x").token is not None


def test_the_business_token_is_never_a_default_in_the_file() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "REELROI_METRICS_TOKEN:-" not in text  # unset must stop `compose up`, not fall back to a known value


def test_grafana_installs_the_official_clickhouse_plugin_pinned() -> None:
    plugins = dict(p.strip().split(" ", 1) for p in SERVICES["grafana"]["environment"]["GF_INSTALL_PLUGINS"].split(","))
    assert plugins["grafana-clickhouse-datasource"].count(".") == 2  # a released version, never "latest"
    assert "clickhouse" in SERVICES["grafana"]["depends_on"]


def test_grafana_provisions_the_compose_clickhouse_as_the_history_dashboards_datasource() -> None:
    import json

    provisioning = ROOT / "infra/grafana/provisioning/datasources/clickhouse.yml"
    [source] = yaml.safe_load(provisioning.read_text())["datasources"]
    assert (source["type"], source["uid"]) == ("grafana-clickhouse-datasource", "clickhouse")
    assert not source.get("isDefault")  # the Prometheus one stays the default
    options, server = source["jsonData"], SERVICES["clickhouse"]
    assert options["host"] in SERVICES and options["host"] == "clickhouse"
    assert options["protocol"] == "http" and f"{options['port']}:{options['port']}" in server["ports"]
    assert options["username"] == server["environment"]["CLICKHOUSE_USER"]
    assert options["defaultDatabase"] == server["environment"]["CLICKHOUSE_DB"]
    # the password: Grafana expands $VAR in provisioning files, from the value compose gives ClickHouse
    password = source["secureJsonData"]["password"]
    found = re.fullmatch(r"\$\{?([A-Z_]+)\}?", password)
    assert found, "the password is a variable, never a value in the file"
    variable = found.group(1)
    assert SERVICES["grafana"]["environment"][variable] == server["environment"]["CLICKHOUSE_PASSWORD"]
    # the history dashboard, mounted with the others, queries this datasource and no other
    mounted = {v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    assert "./infra/grafana/dashboards" in mounted and "./infra/grafana/provisioning" in mounted
    history = json.loads((ROOT / "infra/grafana/dashboards/history.json").read_text())
    for panel in history["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"] == {"type": source["type"], "uid": source["uid"]}, panel["title"]
    assert history["timezone"] == REELROI_SERVICES["worker"]["environment"]["REELROI_TZ"]


def test_the_chat_adapters_alertmanager_calls_are_services_here() -> None:
    for name in ("dingtalk", "prometheus-alert"):
        service = SERVICES[name]
        assert ":" in service["image"] and not service["image"].endswith(":latest"), name
        assert name in SERVICES["alertmanager"]["depends_on"]
