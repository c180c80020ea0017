"""The postback ledger (SPEC 7, 回传) over HTTP: every decision with its delivery, and per campaign the
conversions reported to the ad platforms against the true ones.

Who sees what: SPEC 7 shows 扣量 (the share of pays held back) to admins and
to the campaign's buyer, and nowhere else. An admin reads every campaign (and
may filter by ``buyer_id``); a buyer only campaigns whose ``buyer_id`` is the
token's subject, so another buyer's campaign asked for by id answers no rows;
creators and producers get 403.

The readers are ``sinks/postbacks.py``; the display rows ``reelroi/postbacks_view.py``,
the same ones ``reelroi postbacks`` prints.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, and `Who` is local
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from reelroi.api.access import Forbidden
from reelroi.api.deps import BadRequest, Bom, IdParam, Store
from reelroi.api.reports import download
from reelroi.formatting import display
from reelroi.postbacks_view import ledger_shown, since_us, summary_shown
from sinks.postbacks import LedgerFilter, ledger_rows, summary_rows, summary_totals
from sinks.tokens import TokenInfo

Status = Annotated[
    Literal["pending", "sending", "sent", "failed", "held_kind", "held_min_amount", "held_ratio", "superseded"] | None,
    Query(description="held_* and superseded as decided; a send decision as its delivery, pending before any"),
]
Kind = Annotated[Literal["activate", "pay"] | None, Query()]
Since = Annotated[
    str | None,
    Query(
        max_length=40,
        pattern=r"^[0-9T:+.\- Z]+$",
        description="only conversions at or after: YYYY-MM-DD (midnight in the reporting time zone) or an ISO time",
    ),
]
Limit = Annotated[int, Query(ge=0, le=5000, description="at most this many decisions, latest decided first")]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv download")]


def scope_postbacks(who: TokenInfo, buyer_id: str | None) -> str | None:
    """The buyer_id to keep (None = every campaign, admins only)."""
    if who.role == "admin":
        return buyer_id
    if who.role != "buyer":
        raise Forbidden("only buyers and admins can read postbacks")
    if buyer_id not in (None, who.subject):
        raise Forbidden("a buyer token can only read its own buyer_id")
    return who.subject


def _since(text: str | None, tz: str) -> int | None:
    try:
        return since_us(text, tz)
    except ValueError as exc:
        raise BadRequest("since", str(exc)) from None


def postbacks_router(store: Store, principal: Callable[..., TokenInfo]) -> APIRouter:
    """The ledger routes over ``store``, authenticated by ``principal``."""
    router = APIRouter()
    Who = Annotated[TokenInfo, Depends(principal)]

    @router.get("/api/v1/postbacks", summary="Postback decisions with their delivery, latest decided first")
    def postbacks_api(
        who: Who,
        campaign_id: IdParam = None,
        status: Status = None,
        kind: Kind = None,
        since: Since = None,
        buyer_id: IdParam = None,
        limit: Limit = 200,
        format: Format = "json",
        bom: Bom = False,
    ) -> Any:
        buyer = scope_postbacks(who, buyer_id)
        context = store.context()
        tz = context.policy.tz
        f = LedgerFilter(campaign_id, status, kind, _since(since, tz), buyer)
        rows = [ledger_shown(r, tz) for r in store.run(ledger_rows, f, limit)]
        if format != "json":
            return download(rows, context, format, "reelroi-postbacks", "Postback ledger", bom)
        return {"meta": context.meta(), "limit": limit, "rows": rows}

    @router.get(
        "/api/v1/postbacks/summary",
        summary="Per campaign: true activations and pays against postbacks decided, sent, held back, failed",
    )
    def postbacks_summary_api(
        who: Who,
        campaign_id: IdParam = None,
        since: Since = None,
        buyer_id: IdParam = None,
        format: Format = "json",
        bom: Bom = False,
    ) -> Any:
        buyer = scope_postbacks(who, buyer_id)
        context = store.context()
        exact = store.run(summary_rows, campaign_id, _since(since, context.policy.tz), buyer)
        rows = [summary_shown(r) for r in exact]
        if format != "json":
            title = "Postbacks reported vs true, by campaign"
            return download(rows, context, format, "reelroi-postbacks-summary", title, bom)
        return {"meta": context.meta(), "rows": rows, "totals": display(summary_totals(exact))}

    return router
