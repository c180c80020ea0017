"""A progress line with events/s on a terminal (rich); silent when stderr is piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress

_EVERY_S = 0.2


class Progress:
    """``advance(n)`` as records go by, ``close()`` at the end; ``rate()`` and ``elapsed()`` for summaries."""

    def __init__(self, label: str, total: int | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.label = label
        self.total = total
        self.count = 0
        self.started = time.perf_counter()
        self._shown = 0.0
        self._bar: RichProgress | None = None
        if self.enabled:
            bar = (BarColumn(), TaskProgressColumn()) if total else ()
            self._bar = RichProgress(
                TextColumn("{task.description}"),
                *bar,
                TextColumn("{task.completed:,.0f} events"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
                auto_refresh=False,  # redrawn from advance(): no thread of its own
            )
            self._task = self._bar.add_task(label, total=total, rate="")
            self._bar.start()

    def advance(self, n: int) -> None:
        self.count += n
        now = time.perf_counter()
        if self._bar is not None and now - self._shown > _EVERY_S:
            self._shown = now
            self._draw()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def rate(self) -> float:
        elapsed = self.elapsed()
        return self.count / elapsed if elapsed > 0 else 0.0

    def _draw(self) -> None:
        assert self._bar is not None
        self._bar.update(self._task, completed=self.count, rate=f"{self.rate():,.0f} events/s")
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._draw()
            self._bar.stop()
            self._bar = None
