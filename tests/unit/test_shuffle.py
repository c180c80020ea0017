"""The generator's shuffle (reelroi/generator/shuffle.py): a seeded permutation of the same lines."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from reelroi.generator import GeneratorConfig, generate
from reelroi.generator.shuffle import shuffled


def test_shuffled_is_a_seeded_permutation_and_leaves_no_files(tmp_path: Path) -> None:
    lines = list(generate(GeneratorConfig(seed=3, events=3000)))
    once = list(shuffled(lines, seed=1, spools=8, directory=str(tmp_path)))
    assert Counter(once) == Counter(lines)  # duplicates kept as copies
    assert once != lines
    assert once == list(shuffled(lines, seed=1, spools=8, directory=str(tmp_path)))
    assert once != list(shuffled(lines, seed=2, spools=8, directory=str(tmp_path)))
    assert not any(tmp_path.iterdir())


def test_every_position_is_reachable() -> None:
    """Small case: over many seeds the first line lands everywhere (no spool keeps its lines at the front)."""
    lines = [f"{i}\n".encode() for i in range(6)]
    seen = {list(shuffled(lines, seed=s, spools=3)).index(b"0\n") for s in range(200)}
    assert seen == set(range(6))
