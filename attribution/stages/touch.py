"""The touch stage: clicks and impressions by device (``d:``) and clicks by click_id (``k:``).

Rule 2 of SPEC section 3 needs, for a user's earliest redirect, the latest
click with its click_id and the latest click and impression of its device,
each in its window. Every redirect is told to the keys it names; each key
answers every redirect it knows, and answers again when a touch arrives that
beats its answer. A key's touches only grow, so an answer only moves to a
later touch; the user stage keeps the answer with the greatest version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attribution.clock import TICKS_PER_SECOND
from attribution.policy import Policy
from attribution.sources import Touch
from attribution.stages.base import Stage
from attribution.stages.records import USER, Answer, Emit, RedirectAt, StageRecord, TouchIn

_NO_ANSWER = (None, None)


@dataclass(slots=True)
class TouchState:
    """One touch key. Most keys have clicks or impressions and no redirect: empty parts stay None."""

    seen: dict[str, str] = field(default_factory=dict)  # touch event_id -> origin of its first copy
    clicks: list[Touch] | None = None
    impressions: list[Touch] | None = None
    redirects: dict[str, tuple[int, str]] | None = None  # redirect event_id -> (ts, user)
    answered: dict[str, tuple[Touch | None, Touch | None]] | None = None  # last sent per redirect


class TouchStage(Stage[TouchState]):
    name = "touch"

    def __init__(self, policy: Policy) -> None:
        super().__init__(policy)
        self._click_window = policy.click_window_s * TICKS_PER_SECOND
        self._view_window = policy.view_window_s * TICKS_PER_SECOND
        self._pending: dict[str, set[str]] = {}  # per key, the redirects the record may have re-answered

    def _state(self, key: str) -> TouchState:
        state = self.keys.get(key)
        if state is None:
            state = self.keys[key] = TouchState()
        return state

    def _apply(self, record: StageRecord, at: int) -> None:
        if isinstance(record, TouchIn):
            state = self._state(record.key)
            if not self.first_copy(state.seen, record.event_id, record.origin, at, record.counts):
                return
            touch = Touch(record.ts, record.event_id, record.source_kind, record.source_id)
            if record.impression:
                window = self._view_window
                if state.impressions is None:
                    state.impressions = [touch]
                else:
                    state.impressions.append(touch)
            else:
                window = self._click_window
                if state.clicks is None:
                    state.clicks = [touch]
                else:
                    state.clicks.append(touch)
            if state.redirects:
                for redirect_id, (ts, _) in state.redirects.items():
                    if ts - window <= touch.ts <= ts:
                        self._pending.setdefault(record.key, set()).add(redirect_id)
                self.touch(record.key, at)
            else:
                self.keep(record.key)  # no redirect to answer yet
        elif isinstance(record, RedirectAt):
            state = self._state(record.key)
            if state.redirects is None:
                state.redirects = {}
            if record.event_id not in state.redirects:
                state.redirects[record.event_id] = (record.ts, record.user_id)
                self._pending.setdefault(record.key, set()).add(record.event_id)
                self.touch(record.key, at)

    def needed(self, records: list[StageRecord]) -> list[StageRecord]:
        """Less the touches of keys no redirect names, unless a touch there is a copy (a duplicate fact).

        Such a key answers nothing: its touches only ever change its own state (``keep``), which a
        replay pass discards. Most device keys are of this kind (impressions of devices that never
        redirect), and most click keys (clicks never followed).
        """
        asked: set[str] = set()
        copied: set[str] = set()
        first: dict[str, str] = {}  # event_id -> the key of its first touch (a click's other key is not a copy)
        others: set[tuple[str, str]] = set()  # (key, event_id) of touches under a key other than that first one
        for record in records:
            if isinstance(record, TouchIn):
                key, event_id = record.key, record.event_id
                held = first.get(event_id)
                if held is None:
                    first[event_id] = key
                elif held == key or (key, event_id) in others:
                    copied.add(key)
                else:
                    others.add((key, event_id))
            elif isinstance(record, RedirectAt):
                asked.add(record.key)
        del first, others
        asked |= copied
        return [r for r in records if not isinstance(r, TouchIn) or r.key in asked]

    def _recompute(self, key: str, at: int) -> None:
        state = self.keys[key]
        slot = key[0]
        redirects = state.redirects or {}
        for redirect_id in self._pending.pop(key, ()):
            ts, user = redirects[redirect_id]
            answer = (
                _latest(state.clicks, ts - self._click_window, ts),
                _latest(state.impressions, ts - self._view_window, ts) if slot == "d" else None,
            )
            answered = state.answered
            if answer != (answered.get(redirect_id, _NO_ANSWER) if answered else _NO_ANSWER):
                if answered is None:
                    answered = state.answered = {}
                answered[redirect_id] = answer
                self.emits.append(Emit(USER, Answer(user, redirect_id, slot, at, answer[0], answer[1])))

    def size(self) -> dict[str, int]:
        return {
            "keys": len(self.keys),
            "touches": sum(len(s.clicks or ()) + len(s.impressions or ()) for s in self.keys.values()),
        }


def _latest(touches: list[Touch] | None, start: int, end: int) -> Touch | None:
    best: Touch | None = None
    for touch in touches or ():
        if start <= touch.ts <= end and (best is None or touch > best):
            best = touch
    return best
