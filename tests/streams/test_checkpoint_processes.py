"""Two processes checkpoint the same stage partition at once, and every load is the state at its position.

Each process plays an owner that now and then loses the partition and takes it
back (a new store, a new writer id, a fresh load), so old and new owners
overlap all the time. Every input position sets or deletes one key with a
value that is a function of (key, position), so the state at any position is
known; the processes and the test itself check each load against it, while
the other writer is saving and compacting under the reader.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))

from streams.checkpoints import DirectoryCheckpoints  # noqa: E402
from tests.unit.test_checkpoints import STAGE, World, Writer  # noqa: E402

SAVES = 300
WORLD = World(keys=50)


def owner(root: Path, seed: int, saves: int, start_at: float, ratio: float) -> tuple[float, float, int]:
    """Save ``saves`` checkpoints, taking the partition back (a fresh load) now and then.

    Returns when it started and ended saving, and the last position it saved."""
    rng = random.Random(seed)
    time.sleep(max(0.0, start_at - time.time()))

    def take_over() -> Writer:
        writer = Writer(DirectoryCheckpoints(root, compact_ratio=ratio), WORLD)
        if writer.state != WORLD.state_at(writer.position):
            raise AssertionError(f"load at {writer.position} is not the state there: {writer.state}")
        return writer

    started, writer = time.time(), take_over()
    for _ in range(saves):
        if rng.random() < 0.08:
            writer = take_over()
        writer.save_at(writer.position + rng.randint(1, 6))
    return started, time.time(), writer.position


def test_two_processes_saving_the_same_partition(tmp_path: Path) -> None:
    start_at = time.time() + 1.5  # both interpreters are up by then, so the saves overlap
    children = [
        subprocess.Popen(
            [sys.executable, __file__, str(tmp_path), str(seed), str(SAVES), str(start_at), "0.5"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    reader, loads, positions = DirectoryCheckpoints(tmp_path), 0, set()
    try:
        while any(child.poll() is None for child in children):
            loaded = reader.load(STAGE, 0)
            assert loaded.entries == WORLD.state_at(loaded.position), loaded.position
            loads, positions = loads + 1, positions | {loaded.position}
        outputs = [child.communicate(timeout=30) for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    for child, (out, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err
    starts, ends, finals = zip(*(out.split() for out, _ in outputs), strict=True)
    assert max(map(float, starts)) < min(map(float, ends))  # the two saved at the same time
    last = max(map(int, finals))
    final = DirectoryCheckpoints(tmp_path).load(STAGE, 0)
    assert final == (last, WORLD.state_at(last))
    assert len(positions) > 20, (loads, sorted(positions))  # the test read while both wrote, not only after
    assert len(list((tmp_path / STAGE / "0").iterdir())) < 40  # compaction kept up with two writers


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("seed", type=int)
    parser.add_argument("saves", type=int)
    parser.add_argument("start_at", type=float)
    parser.add_argument("ratio", type=float)
    args = parser.parse_args()
    print(*owner(args.root, args.seed, args.saves, args.start_at, args.ratio))
