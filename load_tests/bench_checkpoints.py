"""Checkpoint benchmark: a base of 1M ~100-byte entries and 10k-key deltas, saved and loaded.

    .venv/bin/python load_tests/bench_checkpoints.py --entries 1000000 --delta-keys 10000

Writes into a fresh temporary directory (or ``--dir``) through
``streams.checkpoints.DirectoryCheckpoints``, fsync included, and prints the
time of each step, the bytes on disk and the peak RSS. Each timing is the best
of ``--repeat`` runs; the files are rewritten each time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streams.checkpoints import DirectoryCheckpoints  # noqa: E402


def best(repeat: int, step: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return min(times)


def disk_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100, help="key and value together, about")
    parser.add_argument("--delta-keys", type=int, default=10_000)
    parser.add_argument("--deltas", type=int, default=10, help="deltas on top of the base for the chain load")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-checkpoints-", dir=args.dir))
    try:
        value_size = max(1, args.value_bytes - 12)
        state = {f"key-{i:08d}": (b"%012d" % i) * (value_size // 12 + 1) for i in range(args.entries)}
        state = {key: value[:value_size] for key, value in state.items()}

        # compact_ratio large: after the first base every save is a delta, so each step times one kind.
        position = 0

        def save_base() -> None:
            nonlocal position
            shutil.rmtree(root / "s", ignore_errors=True)
            position += 1
            DirectoryCheckpoints(root, compact_ratio=1e9).save("s", 0, position, {}, lambda: state)

        base_s = best(args.repeat, save_base)
        base_bytes = disk_bytes(root / "s")
        store = DirectoryCheckpoints(root, compact_ratio=1e9)
        load_base_s = best(args.repeat, lambda: store.load("s", 0))
        assert store.load("s", 0).entries == state

        keys = list(state)[: args.delta_keys]
        delta_bytes = 0

        def save_delta() -> None:
            nonlocal position, delta_bytes
            position += 1
            changed = {key: b"%012d" % position * (value_size // 12) for key in keys}
            state.update(changed)
            before = disk_bytes(root / "s")
            store.save("s", 0, position, changed, lambda: state)
            delta_bytes = disk_bytes(root / "s") - before

        delta_s = best(max(args.repeat, args.deltas), save_delta)
        chain_store = DirectoryCheckpoints(root)
        chain_s = best(args.repeat, lambda: chain_store.load("s", 0))
        loaded = chain_store.load("s", 0)
        assert loaded.entries == state and loaded.position == position
        deltas_on_disk = len(list((root / "s" / "0").glob("*.delta")))

        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"entries: {args.entries:,} of ~{args.value_bytes} bytes; best of {args.repeat}; fsync included")
        print(f"save base:            {base_s:8.3f} s  ({base_bytes / 1e6:,.1f} MB on disk)")
        print(f"load base:            {load_base_s:8.3f} s")
        print(f"save delta:           {delta_s * 1000:8.1f} ms ({args.delta_keys:,} keys, {delta_bytes / 1e6:,.2f} MB)")
        print(f"load base + {deltas_on_disk} deltas: {chain_s:8.3f} s")
        print(f"peak RSS:             {peak_mb:8.0f} MB (the state itself is held in memory too)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
