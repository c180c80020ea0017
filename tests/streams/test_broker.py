"""`reelroi broker` as real processes: a taken port fails in one line, and the Tansu child never outlives its parent."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from attribution.errors import ConfigError
from streams import broker as broker_module
from streams.broker import EmbeddedBroker, free_port

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def alive(pid: int) -> bool:
    """Running (a zombie nobody has reaped yet is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell does to a job it starts in the background


@pytest.fixture(params=["foreground", "background"])
def running(request: pytest.FixtureRequest) -> Iterator[tuple[subprocess.Popen[bytes], int, int]]:
    """A `reelroi broker` process that listens: (process, port, pid of its Tansu child); started as from a
    terminal, or as a background job of a shell (SIGINT inherited ignored)."""
    port = free_port()
    started_as = _sigint_ignored if request.param == "background" else None
    parent = subprocess.Popen([*CLI, "broker", "--port", str(port)], stderr=subprocess.PIPE, preexec_fn=started_as)
    assert parent.stderr is not None
    line = parent.stderr.readline().decode()
    assert f"embedded broker on 127.0.0.1:{port}" in line, line
    children = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
    assert len(children) == 1
    child = int(children[0])
    assert listening(port) and alive(child)
    yield parent, port, child
    if parent.poll() is None:
        parent.kill()
        parent.wait()
    if alive(child):  # only if the test failed: leave nothing behind
        os.kill(child, signal.SIGKILL)


def test_a_taken_port_fails_in_one_line_with_status_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "broker", "--port", str(port)], capture_output=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.decode().splitlines() == [
        f"reelroi broker: error: cannot start the embedded broker: port {port} on 127.0.0.1 is already in use"
    ]


def test_a_port_taken_after_the_check_is_found_by_the_child_exiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(broker_module, "check_port_free", lambda port: None)  # lose the race on purpose
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()  # connecting works, but it is not our broker listening
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="exited with status"):
            broker.start()
        assert broker.pid is not None and not alive(broker.pid)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_the_parent_stops_the_child(running: tuple[subprocess.Popen[bytes], int, int], sig: int) -> None:
    parent, port, child = running
    parent.send_signal(sig)
    assert parent.wait(timeout=10) == 128 + sig  # 143 for SIGTERM, 130 for SIGINT
    assert until(lambda: not listening(port)), "the port still listens"
    assert until(lambda: not alive(child)), "the Tansu child outlived its parent"


def test_the_child_dies_with_a_parent_killed_by_sigkill(running: tuple[subprocess.Popen[bytes], int, int]) -> None:
    parent, port, child = running
    parent.kill()  # no handler runs: only the kernel's parent-death signal can stop the child
    parent.wait(timeout=10)
    assert until(lambda: not listening(port)), "the port still listens"
    assert until(lambda: not alive(child)), "the Tansu child outlived its parent"


def test_embedded_broker_stop_ends_the_child() -> None:
    with EmbeddedBroker() as broker:
        assert broker.pid is not None and alive(broker.pid) and listening(broker.port)
    assert not listening(broker.port)
