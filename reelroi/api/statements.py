"""Creator statements (分账, SPEC section 5) over HTTP: list, show, per-order detail, close;
and the commission that refunds took back, which the creator page shows beside them.

The rules and the SQL are in ``attribution/settlement.py`` and ``sinks/statements.py``;
the display rows are ``reelroi/statements_view.py``, the same ones ``reelroi statements``
prints, so the API answers what the command line shows.

Who sees what: an admin every statement (and may close a period); a creator only
its own, and another creator's statement is answered as unknown (404) so that
ids cannot be probed; a buyer nothing (403).

``/api/v1/commission/clawback``: the commission report's ``refunds`` is refunded
sales; what a refund takes back from the creator is its (negative) commission,
rate x refunded amount (SPEC 3.7), which no figure of that report carries.
"""

# no `from __future__ import annotations`: FastAPI reads the routes' annotations, and `Who` is local
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from attribution.errors import ConfigError
from attribution.settlement import parse_period
from reelroi.api.access import Forbidden, scope_commission
from reelroi.api.deps import Bom, DateFrom, DateTo, IdParam, Store
from reelroi.formatting import csv_text, money
from reelroi.statements_view import line_row, order_row, statement_row
from sinks import statements as st
from sinks.reports import clawback_by_day
from sinks.tokens import TokenInfo

StatementId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv download")]


class CloseRequest(BaseModel):
    """``reelroi statements close`` as a request body."""

    period: str = Field(min_length=1, max_length=16, description="2026-11, 2026-11-H1 or 2026-W45")
    cycle: Literal["monthly", "semimonthly", "weekly"] | None = Field(
        default=None, description="the cycle the period must be in (default: the one its name is spelled in)"
    )
    creator_id: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    force: bool = Field(default=False, description="close a period that has not ended on the data's clock")


def scope_statements(who: TokenInfo, creator_id: str | None) -> str | None:
    """The creator_id to list (None = every creator, admins only)."""
    if who.role == "admin":
        return creator_id
    if who.role != "creator":
        raise Forbidden("only creators and admins can read statements")
    if creator_id not in (None, who.subject):
        raise Forbidden("a creator token can only read its own creator_id")
    return who.subject


def _not_found(statement_id: str) -> JSONResponse:
    return JSONResponse({"error": f"no statement with id {statement_id!r}"}, status_code=404)


def statements_router(store: Store, principal: Callable[..., TokenInfo]) -> APIRouter:
    """The statement routes (and the clawback), reading through ``store``; ``principal``: ``principal_of(store)``."""
    router = APIRouter(tags=["statements"])
    base = "/api/v1/statements"
    Who = Annotated[TokenInfo, Depends(principal)]

    def header_for(who: TokenInfo, statement_id: str) -> dict[str, Any] | None:
        """The statement's display header if it exists and ``who`` may read it."""
        scope_statements(who, None)
        try:
            row = store.run(st.get_statement, statement_id)
        except ConfigError:
            return None
        if who.role != "admin" and row["creator_id"] != who.subject:
            return None  # as if it did not exist: ids of other creators are not confirmed
        return statement_row(row)

    @router.get(base, summary="Closed statements, newest period first per creator")
    def list_api(who: Who, creator_id: IdParam = None) -> dict[str, Any]:
        creator = scope_statements(who, creator_id)
        return {"statements": [statement_row(r) for r in store.run(st.list_statements, creator)]}

    @router.get(base + "/{statement_id}", summary="A statement and its lines (per plan; adjustments name their period)")
    def show_api(who: Who, statement_id: StatementId) -> Any:
        header = header_for(who, statement_id)
        if header is None:
            return _not_found(statement_id)
        lines = [line_row(r) for r in store.run(st.statement_lines, statement_id)]
        return {"statement": header, "lines": lines}

    @router.get(base + "/{statement_id}/orders", summary="The orders explaining each line, with their linked refunds")
    def orders_api(who: Who, statement_id: StatementId, format: Format = "json", bom: Bom = False) -> Any:
        header = header_for(who, statement_id)
        if header is None:
            return _not_found(statement_id)
        nested = format == "json"
        orders = [order_row(r, header["tz"], nested) for r in store.run(st.statement_orders, statement_id)]
        if nested:
            return {"statement": header, "orders": orders}
        return Response(
            ("\ufeff" if bom else "") + csv_text(orders),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="reelroi-statement-{statement_id}-orders.csv"'},
        )

    @router.post(base + "/close", summary="Close a period: write the immutable statements (admins only)")
    def close_api(who: Who, body: CloseRequest) -> Any:
        if who.role != "admin":
            raise Forbidden("only admins can close statements")
        try:
            period = parse_period(body.period, body.cycle)
        except ValueError as exc:
            return JSONResponse({"error": "bad request", "details": [{"param": "period", "problem": str(exc)}]}, 400)
        try:
            done = store.run(st.close, period, body.creator_id, body.force)
        except ConfigError as exc:  # not ended, already closed, out of order: the request conflicts with the data
            return JSONResponse({"error": str(exc)}, status_code=409)
        return {
            "period": period.name,
            "cycle": period.cycle,
            "written": done.written,
            "skipped": [{"creator_id": c, "reason": r} for c, r in done.skipped],
        }

    @router.get("/api/v1/commission/clawback", summary="Commission taken back by refunds, by day, with totals")
    def clawback_api(
        who: Who, date_from: DateFrom = None, date_to: DateTo = None, plan_id: IdParam = None,
        creator_id: IdParam = None,
    ) -> dict[str, Any]:  # fmt: skip
        creator = scope_commission(who, creator_id)
        rows = store.run(clawback_by_day, creator, date_from, date_to, plan_id)
        totals = {n: money(sum((r[n] for r in rows), Decimal(0))) for n in ("refunds", "clawback")}
        shown = [{"date": r["date"].isoformat(), "refunds": money(r["refunds"]), "clawback": money(r["clawback"])}
                 for r in rows]  # fmt: skip
        return {"rows": shown, "totals": totals}

    return router
