"""Checkpoints in a directory: bases, deltas, compaction, two writers, damaged and vanishing files."""

from __future__ import annotations

import logging
import os
import pickle
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from streams import checkpoints
from streams.checkpoints import Checkpoint, CheckpointStore, DirectoryCheckpoints

STAGE = "attributor"


class World:
    """A deterministic input stream: input ``i`` sets (or deletes) one key, so the state at a position is known."""

    def __init__(self, keys: int = 20) -> None:
        self.keys = keys

    def step(self, i: int) -> tuple[str, bytes | None]:
        key = f"k{(i * 7 + i // 5) % self.keys}"
        return key, None if i % 9 == 4 else f"{key}@{i}".encode()

    def state_at(self, position: int) -> dict[str, bytes]:
        state: dict[str, bytes] = {}
        for i in range(position):
            key, value = self.step(i)
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
        return state

    def changed(self, start: int, end: int) -> dict[str, bytes | None]:
        """The keys inputs ``start..end-1`` touched, with their value at ``end``."""
        changed: dict[str, bytes | None] = {}
        for i in range(start, end):
            key, value = self.step(i)
            changed[key] = value
        return changed


class Writer:
    """One owner of the partition: applies the world's inputs and checkpoints at the positions it is told."""

    def __init__(self, store: CheckpointStore, world: World) -> None:
        self.store, self.world = store, world
        loaded = store.load(STAGE, 0)
        self.position, self.state = loaded.position, dict(loaded.entries)

    def save_at(self, position: int) -> None:
        changed = self.world.changed(self.position, position)
        for key, value in changed.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        self.store.save(STAGE, 0, position, changed, lambda: self.state)
        self.position = position


def files(root: Path) -> list[str]:
    return sorted(path.name for path in (root / STAGE / "0").iterdir())


def fresh(root: Path) -> Checkpoint:
    return DirectoryCheckpoints(root).load(STAGE, 0)


def save(
    store: DirectoryCheckpoints, position: int, changed: Mapping[str, bytes | None], state: dict[str, bytes]
) -> None:
    store.save(STAGE, 0, position, changed, lambda: state)


def test_nothing_stored_loads_position_zero(tmp_path: Path) -> None:
    assert fresh(tmp_path) == Checkpoint(0, {})


def test_round_trip(tmp_path: Path) -> None:
    state = {f"key{i}": bytes([i]) * 100 for i in range(256)}
    save(DirectoryCheckpoints(tmp_path, writer="a"), 42, state, state)
    assert files(tmp_path) == [f"{42:020d}-a.base"]
    assert fresh(tmp_path) == Checkpoint(42, state)


def test_the_first_save_is_a_base_of_everything(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path, writer="a")
    save(store, 5, {"b": b"2"}, {"a": b"1", "b": b"2"})
    assert files(tmp_path) == [f"{5:020d}-a.base"]
    assert fresh(tmp_path) == Checkpoint(5, {"a": b"1", "b": b"2"})


def test_deltas_apply_in_position_order_not_writing_order(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="a")
    save(store, 1, {}, {"x": b"base", "y": b"base"})
    # 10 after 9 only if the names sort by position (zero padding); 30 is written before 20 (a late writer).
    save(store, 9, {"x": b"9"}, {})
    save(store, 10, {"x": b"10"}, {})
    save(store, 30, {"y": b"30"}, {})
    DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="b").save(STAGE, 0, 20, {"y": b"20"}, dict)
    assert [name.endswith(".delta") for name in files(tmp_path)] == [False, True, True, True, True]
    assert fresh(tmp_path) == Checkpoint(30, {"x": b"10", "y": b"30"})


def test_none_deletes_a_key(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path, compact_ratio=1e9)
    save(store, 1, {}, {"gone": b"1", "kept": b"1"})
    save(store, 2, {"gone": None, "never-there": None}, {})
    assert fresh(tmp_path) == Checkpoint(2, {"kept": b"1"})
    save(store, 3, {"gone": b"back"}, {})
    assert fresh(tmp_path) == Checkpoint(3, {"gone": b"back", "kept": b"1"})


def test_compaction_writes_a_base_and_removes_older_files(tmp_path: Path) -> None:
    world = World(keys=40)
    store = DirectoryCheckpoints(tmp_path, compact_ratio=1.0, writer="a")
    writer = Writer(store, world)
    bases = set()
    for position in range(3, 300, 3):
        writer.save_at(position)
        names = files(tmp_path)
        base_names = [name for name in names if name.endswith(".base")]
        assert len(base_names) == 1, names  # the older base went with the compaction
        base = tmp_path / STAGE / "0" / base_names[0]
        bases.add(base_names[0])
        assert all(name >= base_names[0] for name in names)  # nothing below the newest base is kept
        deltas = sum((tmp_path / STAGE / "0" / name).stat().st_size for name in names if name.endswith(".delta"))
        assert deltas <= base.stat().st_size  # compact_ratio 1: the deltas never outweigh the base
        assert fresh(tmp_path) == Checkpoint(position, world.state_at(position))
    assert len(bases) > 5  # bases were written again and again, not only the first


def test_compact_ratio_zero_writes_a_base_every_time(tmp_path: Path) -> None:
    writer = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="a"), World())
    for position in (10, 20, 30):
        writer.save_at(position)
        assert files(tmp_path) == [f"{position:020d}-a.base"]


def test_a_late_base_deletes_nothing(tmp_path: Path) -> None:
    world = World()
    owner = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="owner"), world)
    zombie = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="zombie"), world)
    owner.save_at(50)  # the owner's base
    owner.save_at(60)
    zombie.save_at(40)  # a base below the owner's: written, harmless, and nothing removed
    zombie.save_at(50)  # a base at the same position as the owner's: also nothing removed
    assert files(tmp_path) == [
        f"{40:020d}-zombie.base",
        f"{50:020d}-owner.base",
        f"{50:020d}-zombie.base",
        f"{60:020d}-owner.delta",
    ]
    assert fresh(tmp_path) == Checkpoint(60, world.state_at(60))


@pytest.mark.parametrize("ratio", [1e9, 0.3])
def test_two_writers_interleaved_give_the_latest_state(tmp_path: Path, ratio: float) -> None:
    world = World()
    a = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=ratio, writer="a"), world)
    a.save_at(10)
    a.save_at(20)
    b = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=ratio, writer="b"), world)  # the new owner
    assert b.position == 20
    b.save_at(25)
    a.save_at(30)  # the old owner has not noticed yet: its delta covers 20..29, b's 20..24
    b.save_at(35)
    a.save_at(40)
    assert fresh(tmp_path) == Checkpoint(40, world.state_at(40))
    b.save_at(45)
    b.save_at(50)
    a.save_at(43)  # a zombie's last word, below the newest position
    assert fresh(tmp_path) == Checkpoint(50, world.state_at(50))
    if ratio > 1:  # deltas only: both chains are on disk, interleaved
        assert [name[21:] for name in files(tmp_path)[1:]] == ["a.delta"] + ["b.delta", "a.delta"] * 2 + ["a.delta"] + [
            "b.delta"
        ] * 2


def test_garbage_and_mislabelled_files_are_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="a")
    save(store, 10, {}, {"a": b"1", "b": b"1"})
    save(store, 20, {"a": b"20"}, {})
    directory = tmp_path / STAGE / "0"
    whole = pickle.dumps((30, {"b": b"30"}), protocol=5)
    (directory / f"{30:020d}-torn.delta").write_bytes(whole[: len(whole) // 2])
    (directory / f"{31:020d}-junk.delta").write_bytes(b"not a pickle")
    (directory / f"{32:020d}-liar.delta").write_bytes(pickle.dumps((7, {"b": b"liar"}), protocol=5))
    (directory / f"{33:020d}-shape.delta").write_bytes(pickle.dumps(["b", b"shape"], protocol=5))
    (directory / f"{99:020d}-junk.base").write_bytes(b"")  # a damaged newest base: the older one is used
    (directory / f".{40:020d}-w.delta.0123.tmp").write_bytes(pickle.dumps((40, {"b": b"tmp"}), protocol=5))
    (directory / "notes.txt").write_text("not a checkpoint")
    with caplog.at_level(logging.WARNING, logger="streams.checkpoints"):
        assert fresh(tmp_path) == Checkpoint(20, {"a": b"20", "b": b"1"})
    skipped = [record.getMessage() for record in caplog.records]
    assert len(skipped) == 5, skipped
    assert any("holds position 7" in message for message in skipped)


def test_a_file_removed_during_load_is_handled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    old = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="old"), world)
    old.save_at(10)
    old.save_at(20)
    new = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="new"), world)
    listing, listings = checkpoints._listing, []

    def list_then_compact(directory: Path) -> list[checkpoints._File]:
        found = listing(directory)
        listings.append([file.path.name for file in found])
        if len(listings) == 1:
            new.save_at(30)  # another writer compacts between the listing and the reads
        return found

    monkeypatch.setattr(checkpoints, "_listing", list_then_compact)
    assert DirectoryCheckpoints(tmp_path).load(STAGE, 0) == Checkpoint(30, world.state_at(30))
    assert len(listings[0]) == 2 and f"{30:020d}-new.base" in listings[-1]


def test_a_delta_that_appears_under_a_load_makes_it_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing is no snapshot: it may show a writer's newer delta and miss the one just before it."""
    world = World()
    a = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="a"), world)
    a.save_at(10)
    a.save_at(20)
    a.save_at(30)
    listing, calls = checkpoints._listing, []

    def missing_20(directory: Path) -> list[checkpoints._File]:
        found = listing(directory)
        calls.append(1)
        return [file for file in found if file.position != 20] if len(calls) == 1 else found

    monkeypatch.setattr(checkpoints, "_listing", missing_20)
    assert DirectoryCheckpoints(tmp_path).load(STAGE, 0) == Checkpoint(30, world.state_at(30))
    assert len(calls) >= 3  # the first read was thrown away


def test_a_delta_compacted_away_under_a_load_makes_it_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listing missed delta 20; by the second listing a base at 50 removed every file it read."""
    world = World()
    a = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="a"), world)
    for position in (10, 20, 30):
        a.save_at(position)
    b = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="b"), world)
    listing, calls = checkpoints._listing, []

    def missing_20_then_compacted(directory: Path) -> list[checkpoints._File]:
        calls.append(1)
        if len(calls) == 1:
            return [file for file in listing(directory) if file.position != 20]
        if len(calls) == 2:
            b.save_at(50)
        return listing(directory)

    monkeypatch.setattr(checkpoints, "_listing", missing_20_then_compacted)
    assert DirectoryCheckpoints(tmp_path).load(STAGE, 0) == Checkpoint(50, world.state_at(50))


def test_load_reads_nothing_below_the_newest_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    world = World()
    zombie = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="zombie"), world)
    zombie.save_at(3)
    a = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=1e9, writer="a"), world)
    a.save_at(10)
    a.save_at(20)
    b = Writer(DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="b"), world)
    a.save_at(30)
    b.save_at(25)  # a base: the files below 25 go
    zombie.save_at(5)  # a delta below b's base: it stays, and applying it would bring back old values
    a.save_at(40)
    assert [name[:20] for name in files(tmp_path)] == [f"{p:020d}" for p in (5, 25, 30, 40)]
    read, positions = checkpoints._read, []

    def spy(file: checkpoints._File) -> object:
        positions.append(file.position)
        return read(file)

    monkeypatch.setattr(checkpoints, "_read", spy)
    assert DirectoryCheckpoints(tmp_path).load(STAGE, 0) == Checkpoint(40, world.state_at(40))
    assert sorted(positions) == [25, 30, 40]


def test_a_store_that_saves_without_loading_finds_the_base_on_disk(tmp_path: Path) -> None:
    save(DirectoryCheckpoints(tmp_path, writer="a"), 1, {}, {"k": b"v" * 1000})
    save(DirectoryCheckpoints(tmp_path, writer="b"), 2, {"k": b"w"}, {"k": b"w"})
    assert files(tmp_path) == [f"{1:020d}-a.base", f"{2:020d}-b.delta"]  # b weighed a's base: a delta was enough


def test_stages_and_partitions_are_separate(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path)
    store.save("one", 0, 1, {}, lambda: {"k": b"one-0"})
    store.save("one", 1, 2, {}, lambda: {"k": b"one-1"})
    store.save("two", 0, 3, {}, lambda: {"k": b"two-0"})
    assert [store.load(s, p) for s, p in [("one", 0), ("one", 1), ("two", 0), ("two", 1)]] == [
        Checkpoint(1, {"k": b"one-0"}),
        Checkpoint(2, {"k": b"one-1"}),
        Checkpoint(3, {"k": b"two-0"}),
        Checkpoint(0, {}),
    ]


@pytest.mark.parametrize("stage", ["", ".", "..", "a/b", "../up"])
def test_a_stage_name_cannot_leave_the_root(tmp_path: Path, stage: str) -> None:
    with pytest.raises(ValueError):
        DirectoryCheckpoints(tmp_path).load(stage, 0)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        DirectoryCheckpoints(tmp_path, writer="a/b")
    with pytest.raises(ValueError):
        DirectoryCheckpoints(tmp_path, compact_ratio=-1)
    store = DirectoryCheckpoints(tmp_path)
    with pytest.raises(ValueError):
        store.save(STAGE, 0, -1, {}, dict)
    with pytest.raises(ValueError):
        store.load(STAGE, -1)
    store.close()
    with pytest.raises(RuntimeError):
        store.save(STAGE, 0, 1, {}, dict)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> dict[str, bytes]:
        return {"k": lambda: None}  # type: ignore[dict-item]  # pickle fails mid-write

    with pytest.raises((pickle.PicklingError, TypeError, AttributeError)):
        DirectoryCheckpoints(tmp_path).save(STAGE, 0, 1, {}, broken)
    assert files(tmp_path) == []


def test_compaction_removes_only_stale_temporaries(tmp_path: Path) -> None:
    store = DirectoryCheckpoints(tmp_path, compact_ratio=0.0, writer="a")
    save(store, 1, {}, {"k": b"1"})
    directory = tmp_path / STAGE / "0"
    stale, busy = directory / f".{2:020d}-dead.base.1.tmp", directory / f".{2:020d}-busy.base.2.tmp"
    stale.write_bytes(b"half")
    busy.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))  # a writer that died two hours ago
    save(store, 3, {}, {"k": b"3"})
    assert files(tmp_path) == [busy.name, f"{3:020d}-a.base"]
