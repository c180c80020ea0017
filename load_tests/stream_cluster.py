"""Processes and probes for load_tests/bench_stream.py: reelroi workers and sinks as subprocesses, their /metrics.

Every process runs in a session of its own and is SIGKILLed by the kernel if
the benchmark dies (``reelroi.children``). A ``Watch`` thread scrapes every
process's ``/metrics`` a few times a second and keeps the counters the
benchmark times things by: records routed, stage messages applied, facts
written, CPU seconds.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from reelroi.children import die_with_parent, signal_group
from streams.broker import free_port

CLI = [sys.executable, "-m", "reelroi.cli"]
HERE = Path(__file__).resolve().parent
_LABEL = re.compile(r'(\w+)="([^"]*)"')
# the counters a Watch keeps, per process
WATCHED = (
    "reelroi_router_records_total",
    "reelroi_stage_messages_total",
    "reelroi_sink_facts_total",
    "reelroi_stage_load_seconds_count",
)


def scrape(port: int) -> dict[str, float]:
    """``series -> value`` from ``/metrics`` on 127.0.0.1:``port``; empty if it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as answer:
            text = answer.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                continue
    return out


def total(metrics: dict[str, float], name: str) -> float:
    """The sum of every series of ``name`` (any labels)."""
    return sum(v for k, v in metrics.items() if k == name or k.startswith(name + "{"))


def labelled(metrics: dict[str, float], name: str) -> list[tuple[dict[str, str], float]]:
    """``(labels, value)`` of every series of ``name``."""
    return [(dict(_LABEL.findall(k)), v) for k, v in metrics.items() if k.startswith(name + "{")]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (and its reaped children), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds spent by every process on the machine since boot (all cores), from /proc/stat."""
    cols = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in cols[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """CPU seconds the rest of the machine spends from ``start`` on: all of it minus this benchmark's."""

    def __init__(self, broker_pid: int | None) -> None:
        self.pids = [os.getpid(), *([broker_pid] if broker_pid else [])]
        self.busy0 = machine_busy_seconds()
        self.ours0 = sum(cpu_seconds(pid) for pid in self.pids)

    def seconds(self, children_cpu: float) -> float:
        """``children_cpu``: what the phase's own children used (they started after ``start``)."""
        ours = sum(cpu_seconds(pid) for pid in self.pids) - self.ours0 + children_cpu
        return max(0.0, machine_busy_seconds() - self.busy0 - ours)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    cpu_at_exit: float = 0.0

    def metrics(self) -> dict[str, float]:
        return scrape(self.port)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def peak_rss_mb(self) -> float:
        """VmHWM: the process's peak resident set so far (0 once it is gone)."""
        try:
            for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> None:
        if not self.alive():
            return
        self.cpu_at_exit = cpu_seconds(self.popen.pid)
        signal_group(self.popen, sig)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            signal_group(self.popen, signal.SIGKILL)
            self.popen.wait()


class Cluster:
    """Workers and sinks on one broker and topic prefix, sharing one checkpoint directory."""

    def __init__(self, bootstrap: str, prefix: str, work: Path, env: dict[str, str] | None = None) -> None:
        self.bootstrap, self.prefix, self.work = bootstrap, prefix, work
        work.mkdir(parents=True, exist_ok=True)
        self.state = work / "state"
        self.sampling_starts = work / "sampling-starts"  # a sampled worker counts once this exists
        self.env = {**os.environ, "REELROI_LOG_LEVEL": "WARN", **(env or {})}
        self.procs: list[Proc] = []

    def _start(self, name: str, argv: list[str], port: int, env: dict[str, str]) -> Proc:
        log = self.work / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env={**self.env, **env},
                start_new_session=True, preexec_fn=die_with_parent(signal.SIGKILL),
            )  # fmt: skip
        proc = Proc(name, popen, port, log)
        self.procs.append(proc)
        return proc

    def worker(self, name: str, sampled: Path | None = None, env: dict[str, str] | None = None) -> Proc:
        port = free_port()
        head = [sys.executable, str(HERE / "sampled.py"), str(sampled)] if sampled else CLI
        argv = [*head, "worker", "--bootstrap", self.bootstrap, "--topic-prefix", self.prefix,
                "--state-dir", str(self.state)]  # fmt: skip
        extra = {"SAMPLED_START_FILE": str(self.sampling_starts)} if sampled else {}
        return self._start(name, argv, port, {"REELROI_METRICS_PORT": str(port), **extra, **(env or {})})

    def sink(self, name: str, dsn: str, probe: Path | None = None) -> Proc:
        port = free_port()
        head = [sys.executable, str(HERE / "probe_sink.py"), str(probe)] if probe else CLI
        argv = [*head, "sink", "--db", dsn, "--bootstrap", self.bootstrap, "--topic-prefix", self.prefix,
                "--metrics-port", str(port)]  # fmt: skip
        return self._start(name, argv, port, {})

    def stop(self) -> None:
        for proc in self.procs:
            if proc.alive():
                proc.cpu_at_exit = cpu_seconds(proc.popen.pid)
                signal_group(proc.popen, signal.SIGTERM)
        for proc in self.procs:
            proc.stop()


@dataclass
class Watch:
    """Scrapes ``procs`` every ``interval`` s; ``rows`` holds ``(time, {proc: {counter: value}})``."""

    procs: list[Proc]
    interval: float = 0.5  # each scrape costs the scraped process ~5 ms of CPU
    rows: list[tuple[float, dict[str, dict[str, float]]]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.time()
            row = {}
            for proc in list(self.procs):
                m = proc.metrics()
                if m:
                    row[proc.name] = {name: total(m, name) for name in WATCHED}
            self.rows.append((now, row))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def series(self, counter: str, names: list[str] | None = None) -> list[tuple[float, float]]:
        """``(time, sum of counter over the named processes)`` per scrape (a process that did not answer keeps
        its last value)."""
        last: dict[str, float] = {}
        out = []
        for t, row in self.rows:
            for name, values in row.items():
                if names is None or name in names:
                    last[name] = values[counter]
            out.append((t, sum(last.values())))
        return out

    def first_above(self, counter: str, names: list[str] | None = None, level: float = 0.0) -> float | None:
        return next((t for t, v in self.series(counter, names) if v > level), None)

    def last_change(self, counter: str, names: list[str] | None = None) -> float | None:
        """The first scrape that saw the counter's final value."""
        series = self.series(counter, names)
        if not series or series[-1][1] == 0:
            return None
        final = series[-1][1]
        return next(t for t, v in series if v == final)

    def latest(self, counter: str, names: list[str] | None = None) -> float:
        series = self.series(counter, names)
        return series[-1][1] if series else 0.0


_QUERY = """
import json, sys
from sinks.connection import connect, database_of
dsn = sys.argv[1]
client, db = connect(dsn), database_of(dsn)
out = {t: client.query(f"SELECT count() FROM {db}.{t} FINAL").result_rows[0][0]
       for t in ("events", "users", "money", "rejections", "spend")}
print(json.dumps(out))
"""


def table_counts(dsn: str) -> dict[str, int]:
    """Rows per table (``FINAL``) of a chdb directory no other process has open."""
    done = subprocess.run([sys.executable, "-c", _QUERY, dsn], capture_output=True, check=True, cwd=HERE.parent)
    counts: dict[str, int] = json.loads(done.stdout)
    return counts


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) if directory.exists() else 0
