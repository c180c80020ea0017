"""A progress line with events/s on a terminal; silent when stderr is piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.count = 0
        self.started = time.perf_counter()
        self._shown = 0.0

    def advance(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if self.enabled and now - self._shown > 0.2:
            self._shown = now
            self._draw(now)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.count / elapsed if elapsed > 0 else 0.0

    def _draw(self, now: float) -> None:
        elapsed = now - self.started
        rate = self.count / elapsed if elapsed else 0.0
        bar = ""
        if self.total:
            done = min(1.0, self.count / self.total)
            filled = int(done * 30)
            bar = f"[{'#' * filled}{'.' * (30 - filled)}] {done:4.0%} "
        self.stream.write(f"\r{self.label} {bar}{self.count:,} events  {rate:,.0f} events/s  {elapsed:5.1f}s ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()
