"""``reelroi demo`` end to end: broker, worker, embedded ClickHouse, live table, clean stop."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
CLI = [sys.executable, "-m", "reelroi.cli"]


def test_demo_streams_draws_the_table_and_leaves_a_queryable_database(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'db'}"
    done = subprocess.run(
        [*CLI, "demo", "--db", dsn, "--minutes", "0.3", "--rate", "1500"],
        cwd=tmp_path,
        capture_output=True,
        timeout=180,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert "reelroi demo" in out and "events/s" in out and "lag" in out
    assert "D0 ROI" in out and "\nall " in out
    assert "summary: produced" in done.stderr.decode()
    roi = subprocess.run([*CLI, "roi", "--db", dsn, "--format", "json"], cwd=tmp_path, capture_output=True)
    rows = json.loads(roi.stdout)
    assert any(r["source_kind"] == "campaign" and r["spend"] != "0.00" for r in rows)
