"""Shared fixtures.

The embedded ClickHouse (chdb) can open only ONE directory per process, so every
in-process test uses the same session directory (``chdb_dir``) and gets its own
database inside it through ``REELROI_CLICKHOUSE_DATABASE`` (``store`` fixture).
Subprocess runs of the ``reelroi`` command may use their own directories.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reelroi.cli import main

_files = itertools.count(1)


@pytest.fixture(scope="session")
def chdb_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The one chdb directory of this test process.

    A connection is held open for the whole session: each ``main()`` call opens its own
    client and drops it, and when the last chdb handle closes the engine shuts down, to be
    restarted by the next call. Every restart leaks a dozen file descriptors (per-thread
    /proc files of the engine's pools), enough to hit "Too many open files" after a few
    hundred calls; with the engine kept alive there is no restart and no leak."""
    from sinks.connection import connect

    path = tmp_path_factory.mktemp("chdb")
    keeper = connect(f"chdb://{path}")
    yield path
    keeper.close()


class Store:
    """Drives ``reelroi.cli.main`` in-process against one database of the session chdb directory."""

    def __init__(self, dsn: str, workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.dsn = dsn
        self.workdir = workdir
        self._monkeypatch = monkeypatch
        self._capsys = capsys
        self.database = ""
        self.new_database()

    def new_database(self) -> str:
        """Switch to a fresh, unique database (e.g. one per hypothesis example), dropping the previous one."""
        self.drop()
        self.database = f"t_{uuid.uuid4().hex}"
        self._monkeypatch.setenv("REELROI_CLICKHOUSE_DATABASE", self.database)
        return self.database

    def drop(self) -> None:
        """Drop this test's database: chdb gets slower to open with every database left in the directory."""
        if not self.database:
            return
        from sinks.connection import command, connect

        client = connect(self.dsn)
        try:
            command(client, f"DROP DATABASE IF EXISTS {self.database} SYNC")
        finally:
            client.close()

    def write(self, lines: list[bytes], suffix: str = ".jsonl") -> Path:
        """The lines (newline added where missing) as a JSON-lines file."""
        path = self.workdir / f"events-{next(_files)}{suffix}"
        data = b"".join(ln if ln.endswith(b"\n") else ln + b"\n" for ln in lines)
        path.write_bytes(data)
        return path

    def run(self, *argv: str) -> tuple[int, str, str]:
        self._capsys.readouterr()  # drop anything printed before
        code = main(list(argv))
        out, err = self._capsys.readouterr()
        return code, out, err

    def replay_files(self, *files: str | Path, extra: tuple[str, ...] = ()) -> None:
        code, out, err = self.run("replay", *map(str, files), "--db", self.dsn, *extra)
        assert code == 0, f"reelroi replay exited {code}\nstdout: {out}\nstderr: {err}"

    def replay(self, lines: list[bytes], *extra_args: str) -> None:
        self.replay_files(self.write(lines), extra=extra_args)

    def _json(self, command: str, *args: str) -> Any:
        code, out, err = self.run(command, "--db", self.dsn, *args, "--format", "json")
        assert code == 0, f"reelroi {command} exited {code}\nstdout: {out}\nstderr: {err}"
        return json.loads(out)

    def roi(self, *args: str) -> list[dict[str, Any]]:
        return self._json("roi", *args)

    def commission(self, *args: str) -> list[dict[str, Any]]:
        return self._json("commission", *args)

    def rejects(self) -> dict[str, Any]:
        return self._json("rejects")

    def reports(self) -> dict[str, Any]:
        """All three reports, in the shape of the oracle's ``reference_reports``."""
        return {"roi": self.roi(), "commission": self.commission(), "rejects": self.rejects()}


@pytest.fixture
def store(
    chdb_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Store]:
    """A unique database in the session chdb directory, and a helper to drive the CLI on it."""
    for var in ("REELROI_DB", "REELROI_TZ", "REELROI_CURRENCY", "REELROI_CLICK_WINDOW", "REELROI_VIEW_WINDOW"):
        monkeypatch.delenv(var, raising=False)
    helper = Store(f"chdb://{chdb_dir}", tmp_path, monkeypatch, capsys)
    yield helper
    helper.drop()
