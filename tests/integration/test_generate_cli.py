"""``reelroi generate --shuffle``: the same lines as the generated order, in a full random arrival order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REELROI = Path(sys.executable).with_name("reelroi")


def _generate(tmp_path: Path, name: str, *extra: str) -> list[bytes]:
    path = tmp_path / name
    proc = subprocess.run(
        [str(REELROI), "generate", "--seed", "11", "--events", "5000", *extra, "--out", str(path)],
        capture_output=True, env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return path.read_bytes().splitlines()


def test_shuffle_permutes_the_same_lines(tmp_path):
    ordered = _generate(tmp_path, "sorted.jsonl")
    shuffled = _generate(tmp_path, "shuffled.jsonl", "--shuffle")
    again = _generate(tmp_path, "again.jsonl", "--shuffle")
    assert sorted(shuffled) == sorted(ordered)
    assert shuffled != ordered
    assert shuffled == again  # seeded: the same seed, the same order
    # a full permutation, not a local jitter: lines move far from where they were
    position = {line: i for i, line in enumerate(ordered)}
    moved = sum(1 for i, line in enumerate(shuffled) if abs(position[line] - i) > len(ordered) // 10)
    assert moved > len(ordered) // 2
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("reelroi-shuffle-")] == []  # spools removed


def test_duplicate_share_adds_exact_copies(tmp_path):
    none = _generate(tmp_path, "none.jsonl", "--duplicate-share", "0", "--malformed-share", "0")
    some = _generate(tmp_path, "some.jsonl", "--duplicate-share", "0.05", "--malformed-share", "0")
    assert len(set(none)) == len(none)
    copies = len(some) - len(set(some))
    assert 0.03 * len(some) < copies < 0.07 * len(some)
