"""A full random arrival order for generated lines, in bounded memory (the benchmark's ``--shuffle``).

Each line goes to one of ``spools`` temporary files chosen at random; each
file is then shuffled in memory and the files are read one after another.
That is a uniformly random permutation (as sorting by random keys is: the
file is the key's leading digits, the in-memory shuffle the rest), and
memory holds one file's lines, about ``lines / spools``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from random import Random


def shuffled(lines: Iterable[bytes], seed: int = 0, spools: int = 64, directory: str | None = None) -> Iterator[bytes]:
    """``lines`` (each ending in a newline) in a uniformly random order, seeded."""
    rng = Random(seed)
    work = Path(tempfile.mkdtemp(prefix="reelroi-shuffle-", dir=directory))
    try:
        handles = [(work / f"{i}.lines").open("wb") for i in range(spools)]
        try:
            for line in lines:
                handles[int(rng.random() * spools)].write(line)
        finally:
            for handle in handles:
                handle.close()
        for i in range(spools):
            path = work / f"{i}.lines"
            with path.open("rb") as spool:
                held = spool.readlines()
            path.unlink()
            rng.shuffle(held)
            yield from held
    finally:
        shutil.rmtree(work, ignore_errors=True)
