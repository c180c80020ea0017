"""The streaming pipeline as processes, for tests: N ``reelroi worker`` and one ``reelroi sink``.

    with Pipeline(tmp_path, broker.bootstrap, "s.") as pipe:
        pipe.start(workers=2)
        produce(broker.bootstrap, "s.", lines)
        assert pipe.drained(240), pipe.tail()
        pipe.stop()
    assert reports(pipe.dsn, tmp_path) == replayed_reports(lines, tmp_path)

Every process runs in its own session (a kill reaches its whole group), with
its output appended to one log, metrics off (``REELROI_METRICS_PORT=0``, the
sink's ``--metrics-port 0``: a process of another test may hold the default
port) and a checkpoint every second. The workers share one ``--state-dir``
(one machine); only the sink opens the embedded ClickHouse, so stop it before
reading reports from its directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from streams.lag import LagReader, wait_drained

CLI = [sys.executable, "-m", "reelroi.cli"]
GROUP = "reelroi-attribution"  # REELROI_KAFKA_GROUP's default; the sink's group is GROUP + "-sink"
Process = subprocess.Popen[bytes]


def reports(dsn: str, cwd: Path) -> dict[str, object]:
    """``reelroi roi``, ``commission`` and ``rejects`` of ``dsn``, as JSON."""
    out = {}
    for command in ("roi", "commission", "rejects"):
        done = subprocess.run([*CLI, command, "--db", dsn, "--format", "json"], cwd=cwd, capture_output=True)
        assert done.returncode == 0, done.stderr.decode()
        out[command] = json.loads(done.stdout)
    return out


def replayed_reports(lines: list[bytes], tmp_path: Path) -> dict[str, object]:
    """The reports of ``reelroi replay`` over ``lines``: what a stream must converge to."""
    source = tmp_path / "events.jsonl"
    source.write_bytes(b"".join(lines))
    replay_dsn = f"chdb://{tmp_path / 'replay'}"
    done = subprocess.run([*CLI, "replay", str(source), "--db", replay_dsn], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    return reports(replay_dsn, tmp_path)


def wait_for(predicate, timeout: float = 120.0, what: str = "the condition") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}")


def kill(process: Process, sig: int = signal.SIGKILL, timeout: float = 60.0) -> float:
    """Signal the process's group and wait for it: seconds until it exited."""
    started = time.monotonic()
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(timeout=timeout)
    return time.monotonic() - started


def committed(bootstrap: str, prefix: str, group: str = GROUP) -> dict[tuple[str, int], int]:
    """A group's committed offsets (the workers' by default; the sink's is ``group + "-sink"``)."""
    reader = LagReader(bootstrap, prefix, GROUP)
    try:
        return reader.committed(group)
    finally:
        reader.close()


def drained(bootstrap: str, prefix: str, timeout: float) -> bool:
    """``reelroi lag --wait``: every record of the router, the stages and the sink committed, in two scans.

    A stage acks only what a checkpoint covers (its outputs delivered first),
    and the sink only what it wrote, so drained means every fact is in ClickHouse.
    """
    argv = [*CLI, "lag", "--bootstrap", bootstrap, "--topic-prefix", prefix, "--group", GROUP, "--wait", str(timeout)]
    return subprocess.run(argv, capture_output=True, timeout=timeout + 120).returncode == 0


def workers_drained(bootstrap: str, prefix: str, timeout: float) -> bool:
    """As ``drained``, for the workers' group alone (the router and the stages), whatever the sink does."""
    reader = LagReader(bootstrap, prefix, GROUP)
    reader.sections = [s for s in reader.sections if s.group == GROUP]
    reader.topics = [t for s in reader.sections for t in s.topics]
    try:
        return wait_drained(reader.scan, timeout)[1]
    finally:
        reader.close()


class Pipeline:
    """Worker and sink processes on one broker and topic prefix, their output in ``log``."""

    def __init__(self, tmp_path: Path, bootstrap: str, prefix: str, env: dict[str, str] | None = None) -> None:
        self.tmp, self.bootstrap, self.prefix = tmp_path, bootstrap, prefix
        self.log = tmp_path / "pipeline.log"
        self.db = tmp_path / "stream"
        self.dsn = f"chdb://{self.db}"
        self.state = tmp_path / "state"
        self.env = {**os.environ, "REELROI_METRICS_PORT": "0", "REELROI_STAGE_CHECKPOINT_S": "1",
                    "REELROI_LOG_LEVEL": "WARN", **(env or {})}  # fmt: skip
        self.workers: list[Process] = []
        self.sink: Process | None = None
        self.starts = {"worker": 0, "sink": 0}

    def _spawn(self, argv: list[str]) -> Process:
        with self.log.open("ab") as log:
            return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True)

    def start_worker(self) -> Process:
        """One more worker (it joins the group); returns it, also kept in ``workers``."""
        argv = [*CLI, "worker", "--bootstrap", self.bootstrap, "--topic-prefix", self.prefix,
                "--state-dir", str(self.state)]  # fmt: skip
        worker = self._spawn(argv)
        self.workers.append(worker)
        self.starts["worker"] += 1
        return worker

    def start_sink(self, metrics_port: int = 0, *options: str) -> Process:
        """The sink (exactly one: it owns the embedded ClickHouse directory); ``metrics_port`` 0: no /metrics."""
        assert self.sink is None or self.sink.poll() is not None, "a sink is running: the directory is its"
        argv = [*CLI, "sink", "--db", self.dsn, "--bootstrap", self.bootstrap, "--topic-prefix", self.prefix,
                "--metrics-port", str(metrics_port), *options]  # fmt: skip
        self.sink = self._spawn(argv)
        self.starts["sink"] += 1
        return self.sink

    def start(self, workers: int = 1) -> Pipeline:
        self.start_sink()
        for _ in range(workers):
            self.start_worker()
        return self

    def restart_worker(self, index: int, sig: int = signal.SIGKILL) -> Process:
        """Kill worker ``index`` (kill -9 by default: no checkpoint, no commit) and start another in its place."""
        kill(self.workers.pop(index), sig)
        worker = self.start_worker()
        self.workers.insert(index, self.workers.pop())
        return worker

    def restart_sink(self, sig: int = signal.SIGKILL) -> Process:
        assert self.sink is not None
        kill(self.sink, sig)
        return self.start_sink()

    def drained(self, timeout: float) -> bool:
        return drained(self.bootstrap, self.prefix, timeout)

    def running(self) -> bool:
        """Every worker and the sink still up."""
        return all(p.poll() is None for p in [*self.workers, *([self.sink] if self.sink else [])])

    def stop(self, timeout: float = 60.0) -> float:
        """SIGTERM every worker, then the sink, and wait: the longest any took, in seconds."""
        took = [kill(w, signal.SIGTERM, timeout) for w in self.workers]
        self.workers = []
        if self.sink is not None:
            took.append(kill(self.sink, signal.SIGTERM, timeout))
        return max(took, default=0.0)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        """Whatever happened, no process outlives the test (a failed one is killed, not waited for)."""
        for process in [*self.workers, *([self.sink] if self.sink else [])]:
            if process.poll() is None:
                kill(process, signal.SIGTERM if kind is None else signal.SIGKILL)
