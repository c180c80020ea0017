"""The attribution policy: the configurable parameters of SPEC section 3."""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DURATION = re.compile(r"([0-9]+)\s*(d|h|m|s)")
_UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """``7d``, ``24h``, ``90m``, ``30s`` or a combination like ``1d12h``, in seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or _DURATION.sub("", cleaned).strip():
        raise ValueError(f"not a duration: {text!r} (use e.g. 7d, 24h, 90m)")
    return sum(int(n) * _UNIT_SECONDS[unit] for n, unit in parts)


def format_duration(seconds: int) -> str:
    """The shortest exact ``parse_duration`` spelling of ``seconds``."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True, slots=True)
class Policy:
    """Reporting currency and time zone, click and view windows (in seconds)."""

    currency: str = "CNY"
    tz: str = "Asia/Shanghai"
    click_window_s: int = 7 * 86_400
    view_window_s: int = 24 * 3_600

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z]{3}", self.currency):
            raise ValueError(f"currency must be three capital letters, got {self.currency!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.tz!r}") from None
        if self.click_window_s < 0 or self.view_window_s < 0:
            raise ValueError("windows must not be negative")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.tz)

    @classmethod
    def from_settings(cls, settings: dict[str, str]) -> Policy:
        """The policy saved with a database (``policy.*`` settings, as ``describe`` names them); defaults for the rest."""
        default = cls()
        return cls(
            currency=settings.get("policy.currency", default.currency),
            tz=settings.get("policy.tz", default.tz),
            click_window_s=parse_duration(settings["policy.click_window"])
            if "policy.click_window" in settings
            else default.click_window_s,
            view_window_s=parse_duration(settings["policy.view_window"])
            if "policy.view_window" in settings
            else default.view_window_s,
        )

    def describe(self) -> dict[str, str]:
        return {
            "currency": self.currency,
            "tz": self.tz,
            "click_window": format_duration(self.click_window_s),
            "view_window": format_duration(self.view_window_s),
        }
