"""Rule 2 of SPEC section 3: which touch, if any, acquired a user."""

from __future__ import annotations

from typing import NamedTuple


class Touch(NamedTuple):
    """A click or an impression. Ordered by (ts, event_id): ``max`` is "latest"."""

    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    source_kind: str  # campaign | plan
    source_id: str


class Redirect(NamedTuple):
    """A redirect, ordered by (ts, event_id): ``min`` is "earliest"."""

    ts: int  # ticks (attribution.clock): exact to 10^-18 s
    event_id: str
    click_id: str | None
    device_id: str | None


class Source(NamedTuple):
    kind: str  # campaign | plan | organic
    id: str
    touch: str  # click_id | device | view | organic


ORGANIC = Source("organic", "organic", "organic")


def latest_in_window(touches: list[Touch] | None, start: int, end: int) -> Touch | None:
    """The latest touch with ``start <= ts <= end`` (both ends inclusive)."""
    best: Touch | None = None
    if touches:
        for touch in touches:
            if start <= touch.ts <= end and (best is None or touch > best):
                best = touch
    return best


def find_source(
    redirect: Redirect,
    clicks_by_id: dict[str, list[Touch]],
    clicks_by_device: dict[str, list[Touch]],
    impressions_by_device: dict[str, list[Touch]],
    click_window: int,
    view_window: int,
) -> Source:
    """Click by click_id, else the device's latest click, else view-through, else organic."""
    t = redirect.ts
    if redirect.click_id is not None:
        touch = latest_in_window(clicks_by_id.get(redirect.click_id), t - click_window, t)
        if touch is not None:
            return Source(touch.source_kind, touch.source_id, "click_id")
    if redirect.device_id is not None:
        touch = latest_in_window(clicks_by_device.get(redirect.device_id), t - click_window, t)
        if touch is not None:
            return Source(touch.source_kind, touch.source_id, "device")
        touch = latest_in_window(impressions_by_device.get(redirect.device_id), t - view_window, t)
        if touch is not None:
            return Source(touch.source_kind, touch.source_id, "view")
    return ORGANIC
