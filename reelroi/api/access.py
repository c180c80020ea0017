"""Who sees what: pure scoping rules applied to every request before any query.

admin   everything, including rejections
buyer   ROI of campaigns whose buyer_id is the token's subject; nothing else
creator commission of plans whose creator_id is the token's subject; nothing else
"""

from __future__ import annotations

from dataclasses import replace

from sinks.analytics import RoiFilter
from sinks.tokens import TokenInfo


class Forbidden(Exception):
    """The token is valid but may not see what was asked for."""


def scope_roi(who: TokenInfo, wanted: RoiFilter) -> RoiFilter:
    if who.role == "admin":
        return wanted
    if who.role != "buyer":
        raise Forbidden("only buyers and admins can read ROI")
    if wanted.buyer_id not in (None, who.subject):
        raise Forbidden("a buyer token can only read its own buyer_id")
    if wanted.source_kind not in (None, "campaign"):
        raise Forbidden("a buyer token can only read campaigns")
    return replace(wanted, buyer_id=who.subject, source_kind="campaign")


def scope_commission(who: TokenInfo, creator_id: str | None) -> str | None:
    """The creator_id to filter on (None = all, admins only)."""
    if who.role == "admin":
        return creator_id
    if who.role != "creator":
        raise Forbidden("only creators and admins can read commission")
    if creator_id not in (None, who.subject):
        raise Forbidden("a creator token can only read its own creator_id")
    return who.subject


def require_admin(who: TokenInfo) -> None:
    if who.role != "admin":
        raise Forbidden("only admins can read rejections")
