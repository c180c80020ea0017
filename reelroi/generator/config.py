"""What to generate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate. ``events`` (when set) overrides ``users_per_day``."""

    seed: int = 42
    start_date: date = date(2026, 11, 1)  # first local day (Asia/Shanghai)
    days: int = 1
    campaigns: int = 40  # across platforms douyin/kuaishou/tencent/tiktok/other
    plans: int = 15  # creator promotion plans (several plans per creator)
    events: int | None = None  # if set, scale users so the output has about this many lines
    users_per_day: int = 20_000
    malformed_share: float = 0.002  # share of malformed lines
    duplicate_share: float = 0.01  # share of exact duplicate lines (producer retries)
    named_share: float = 0.9  # share of configured campaigns that carry a name (SPEC: optional)
