"""Stage tasks in a fork of their pool worker (reelroi/replay_tasks.py ``_in_fork``): results, failures, deaths."""

from __future__ import annotations

import os
import signal

import pytest

from reelroi.replay_tasks import Done, _in_fork


def _made(n: int) -> Done:
    kept = [(i, str(i)) for i in range(n)]  # built in the fork and never freed there
    return Done([("money", f"rows-{os.getpid()}", len(kept))], records=n)


def _fails(text: str) -> Done:
    raise ValueError(text)


class _Unpicklable(Exception):
    def __reduce__(self) -> str:
        raise TypeError("no")


def _fails_oddly() -> Done:
    raise _Unpicklable("odd")


class _TwoArguments(Exception):
    def __init__(self, a: str, b: str) -> None:
        super().__init__(f"{a}/{b}")


def _fails_unrebuildably() -> Done:
    raise _TwoArguments("a", "b")  # pickles, but does not load back


def _killed() -> Done:
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable")


def test_a_fork_returns_what_the_task_returned_from_another_process() -> None:
    done = _in_fork(_made, 50_000)
    assert done.records == 50_000 and done.rows[0][2] == 50_000
    assert done.rows[0][1] != f"rows-{os.getpid()}"  # it ran in another process


def test_a_fork_raises_what_the_task_raised_with_where_it_raised() -> None:
    with pytest.raises(ValueError, match="bucket 3 unreadable") as raised:
        _in_fork(_fails, "bucket 3 unreadable")
    cause = str(raised.value.__cause__)
    assert "in _fails" in cause and "raise ValueError(text)" in cause  # the fork's own traceback
    with pytest.raises(RuntimeError, match="_Unpicklable: odd"):
        _in_fork(_fails_oddly)
    with pytest.raises(RuntimeError, match="_TwoArguments: a/b"):
        _in_fork(_fails_unrebuildably)


def test_a_fork_that_dies_is_an_error_naming_the_task() -> None:
    with pytest.raises(RuntimeError, match=r"_killed\(\) died \(killed by signal 9\)"):
        _in_fork(_killed)
