"""A user during a session, and packed into one int between sessions."""

from __future__ import annotations

from typing import Any

from reelroi.generator.encoding import Clock, device_of
from reelroi.generator.tables import CURRENCIES, CURRENCY_INDEX, HOSTAPPS


class User:
    """A user during a session. Between sessions a user waits as one packed int (``pack``),
    so that a million returning users cost tens of megabytes, not hundreds."""

    __slots__ = (
        "acq_day",
        "app",
        "cur",
        "day",
        "device",
        "drama",
        "eng",
        "episode",
        "fmt",
        "host",
        "hostapp",
        "iaa",
        "late_redirect",
        "n",
        "paid",
        "redirect",
        "uid",
        "utc",
    )

    def __init__(
        self, n: int, clock: Clock, utc: bool, cur: int, drama: int, hostapp: int, eng: int, iaa: bool
    ) -> None:
        self.n, self.uid, self.device = n, f"u{n}", device_of(n)
        self.utc, self.fmt = utc, clock.utc if utc else clock.local
        self.cur = CURRENCIES[cur]
        self.drama = f"dr{drama + 1:03d}"
        self.hostapp = hostapp
        self.host, self.app = HOSTAPPS[hostapp]
        self.eng = eng  # index into ENG_LEVELS
        self.iaa = iaa  # watches rewarded ads
        self.acq_day = 0  # run day of the acquisition
        self.day = 0  # days since acquisition of the current session
        self.paid = False
        self.late_redirect = False  # money-only user whose redirect comes on a later day
        self.episode = 1
        self.redirect: dict[str, Any] | None = None  # first-session redirect, built at arrival

    # Bit layout, low to high: second in the minute of the next session (6), day (5), flags
    # utc/iaa/paid/late_redirect (4), engagement (2), currency (4), host+app (4), episode (10),
    # drama (10), acquisition day (16), then n.
    def pack(self, second: int) -> int:
        code = ((self.n << 16 | self.acq_day) << 10 | int(self.drama[2:]) - 1) << 10 | min(self.episode, 1023)
        code = ((code << 4 | self.hostapp) << 4 | CURRENCY_INDEX[self.cur]) << 2 | self.eng
        flags = self.utc << 3 | self.iaa << 2 | self.paid << 1 | self.late_redirect
        return ((code << 4 | flags) << 5 | self.day) << 6 | second

    @classmethod
    def unpack(cls, code: int, clock: Clock) -> tuple[User, int]:
        """The user and the second in the minute of their session."""
        second, day, flags = code & 63, code >> 6 & 31, code >> 11 & 15
        eng, cur, hostapp = code >> 15 & 3, code >> 17 & 15, code >> 21 & 15
        episode, drama, acq_day, n = code >> 25 & 1023, code >> 35 & 1023, code >> 45 & 0xFFFF, code >> 61
        u = cls(n, clock, bool(flags & 8), cur, drama, hostapp, eng, bool(flags & 4))
        u.paid, u.late_redirect = bool(flags & 2), bool(flags & 1)
        u.acq_day, u.day, u.episode = acq_day, day, episode
        return u, second
