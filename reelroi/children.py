"""Child processes that end with their parent: a session of their own, and a signal when the parent dies.

``reelroi demo`` runs the broker and the workers this way. A child in its own
session does not get the terminal's Ctrl-C, so the parent decides the order
of shutdown; ``PR_SET_PDEATHSIG`` covers the parent dying without a
``finally`` (SIGKILL).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

STOP_S = 10.0  # how long a child has for its clean shutdown before SIGKILL


def die_with_parent(sig: int) -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel to send ``sig`` to the child when this process dies (Linux only).

    The signal follows the *thread* that forked, so it is set only when starting
    from the main thread, which lives as long as the process.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)  # loaded before the fork
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        libc.prctl(pr_set_pdeathsig, sig, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


class Children:
    """Child processes, each in a session of its own, with its output in ``work/<name>.log``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: list[IO[bytes]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str], death_signal: int) -> None:
        log = (self.work / f"{name}.log").open("wb")
        self._logs.append(log)
        self.processes[name] = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # Ctrl-C at the terminal reaches the parent only
            preexec_fn=die_with_parent(death_signal),
        )

    def running(self, prefix: str) -> int:
        return sum(1 for name, p in self.processes.items() if name.startswith(prefix) and p.poll() is None)

    def ended(self) -> list[tuple[str, int]]:
        """(name, exit status) of the children that have ended."""
        return [(name, p.returncode) for name, p in self.processes.items() if p.poll() is not None]

    def stop(self, prefix: str) -> None:
        """SIGTERM the process groups of the children named ``prefix…``, SIGKILL what is left after ``STOP_S``."""
        chosen = [p for name, p in self.processes.items() if name.startswith(prefix)]
        for p in chosen:
            signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + STOP_S
        for p in chosen:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                signal_group(p, signal.SIGKILL)  # it and whatever it started
                p.wait()

    def close(self) -> None:
        for log in self._logs:
            log.close()

    def log_tail(self, name: str, chars: int = 2000) -> str:
        return (self.work / f"{name}.log").read_text(errors="replace")[-chars:]


def signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.killpg(process.pid, sig)  # its own session: the child and anything it started
