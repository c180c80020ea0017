"""Report routes: ROI (grouped, pivoted, with funnel), the cohort matrix, the curve, period comparison, commission.

Every JSON answer that carries report figures carries ``meta`` (policy,
``as_of``, rates warning); ``format=csv|xlsx`` downloads carry the same as
columns (see ``reelroi/exports.py``).
"""

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from reelroi.api.access import scope_commission, scope_roi
from reelroi.api.deps import (
    BadRequest,
    Bom,
    DateFrom,
    DateTo,
    Filter,
    Format,
    IdParam,
    Store,
    UndatedFilter,
    principal_of,
)
from reelroi.exports import XLSX_MEDIA_TYPE, csv_bytes, xlsx_bytes
from reelroi.formatting import display, money
from reelroi.labels import ReportContext
from reelroi.report_rows import (
    DEFAULT_MATRIX_DAYS,
    compare_windows,
    curve_points,
    matrix_flat,
    matrix_shown,
    parse_days,
    roi_shown,
)
from sinks.analytics import BadGrouping, RoiFilter, commission_grouped, group_keys, roi_grouped, roi_totals
from sinks.matrix import MAX_DAYS, MAX_OFFSET, cohort_matrix
from sinks.tokens import TokenInfo

GroupBy = Annotated[
    str,
    Query(
        max_length=40,
        pattern=r"^[a-z_]+(,[a-z_]+)?$",
        description="source_date (default), source, campaign, drama, platform, buyer, date, or two of "
        "date, source, campaign, drama, platform, buyer joined by a comma (date,campaign)",
    ),
]
MatrixGroup = Annotated[Literal["source", "campaign", "drama", "platform"], Query()]
Days = Annotated[
    str,
    Query(max_length=200, pattern=r"^\d{1,4}(,\d{1,4})*$", description="day offsets, e.g. 0,1,2,3,7,14,30"),
]
DEFAULT_DAYS = ",".join(map(str, DEFAULT_MATRIX_DAYS))
Period = Annotated[
    Literal["day", "week", "month"],
    Query(description="day, week (from Monday) or month (from the 1st) to date, against the one before"),
]


def download(
    rows: list[dict[str, Any]], context: ReportContext, fmt: str, name: str, title: str, bom: bool
) -> Response:
    """A CSV or xlsx attachment of display rows, with the policy and ``as_of``."""
    if fmt == "xlsx":
        body, media, ext = xlsx_bytes(rows, context, title), XLSX_MEDIA_TYPE, "xlsx"
    else:
        body, media, ext = csv_bytes(rows, context, bom), "text/csv; charset=utf-8", "csv"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}.{ext}"'})


def _totals(store: Store, f: RoiFilter, context: ReportContext) -> dict[str, Any]:
    exact = store.run(roi_totals, f, True, context.policy.tz)
    return roi_shown(exact, context, funnel=True)


def report_routes(store: Store) -> APIRouter:
    """The report routes over ``store``."""
    router = APIRouter()
    Who = Annotated[TokenInfo, Depends(principal_of(store))]

    @router.get("/api/v1/roi", summary="ROI rows with funnel, filtered and grouped (one or two dimensions), totals")
    def roi_api(
        who: Who, wanted: Filter, group_by: GroupBy = "source_date", format: Format = "json", bom: Bom = False
    ) -> Any:
        scoped = scope_roi(who, wanted)
        try:
            group_keys(group_by)
        except BadGrouping as exc:
            raise BadRequest("group_by", str(exc)) from None
        context = store.context()
        exact = store.run(roi_grouped, scoped, group_by, True, context.policy.tz)
        rows = [roi_shown(r, context, funnel=True) for r in exact]
        if format != "json":
            name = f"reelroi-roi-{group_by.replace(',', '-')}"
            return download(rows, context, format, name, f"ROI by {group_by}", bom)
        return {"group_by": group_by, "meta": context.meta(), "rows": rows, "totals": _totals(store, scoped, context)}

    @router.get("/api/v1/roi/matrix", summary="Cohort matrix: revenue and ROI of each cohort at day offsets")
    def matrix_api(
        who: Who,
        wanted: Filter,
        days: Days = DEFAULT_DAYS,
        group_by: MatrixGroup = "source",
        format: Format = "json",
        bom: Bom = False,
    ) -> Any:
        scoped = scope_roi(who, wanted)
        offsets = parse_days(days)
        if len(offsets) > MAX_DAYS or offsets[-1] > MAX_OFFSET:
            raise BadRequest("days", f"at most {MAX_DAYS} offsets, each at most {MAX_OFFSET}")
        context = store.context()
        rows = matrix_shown(store.run(cohort_matrix, scoped, offsets, group_by), offsets, context)
        if format != "json":
            title = f"Cohort matrix by {group_by}"
            return download(matrix_flat(rows), context, format, f"reelroi-matrix-{group_by}", title, bom)
        return {"days": offsets, "group_by": group_by, "meta": context.meta(), "rows": rows}

    @router.get("/api/v1/roi/curve", summary="Cohort curve: D0, D1, D3, D7 over the cohorts final there, and total")
    def curve_api(who: Who, wanted: Filter) -> dict[str, Any]:
        scoped = scope_roi(who, wanted)
        context = store.context()
        by_date = store.run(roi_grouped, scoped, "date")
        spend = sum((r["spend"] for r in by_date), Decimal(0))
        return {"spend": money(spend), "meta": context.meta(), "points": curve_points(by_date, context)}

    @router.get("/api/v1/roi/compare", summary="Totals of the trailing period against the one before it")
    def compare_api(
        who: Who,
        wanted: UndatedFilter,
        period: Period = "week",
        to: Annotated[
            date | None, Query(description="last cohort date of the current period (default: as_of's)")
        ] = None,
    ) -> dict[str, Any]:
        scoped = scope_roi(who, wanted)
        context = store.context()
        end = to or context.local_today() or date.today()
        out: dict[str, Any] = {"period": period, "meta": context.meta()}
        for name, (start, stop) in zip(("current", "previous"), compare_windows(period, end), strict=True):
            dated = replace(scoped, date_from=start, date_to=stop)
            out[name] = {"from": start.isoformat(), "to": stop.isoformat(), **_totals(store, dated, context)}
        return out

    @router.get("/api/v1/commission", summary="Commission by creator, plan and day (or grouped), with totals")
    def commission_api(
        who: Who,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        plan_id: IdParam = None,
        creator_id: IdParam = None,
        group_by: Annotated[Literal["detail", "plan", "day"], Query()] = "detail",
        format: Format = "json",
        bom: Bom = False,
    ) -> Any:
        creator = scope_commission(who, creator_id)
        context = store.context()
        rows = store.run(commission_grouped, creator, date_from, date_to, plan_id, group_by)
        shown = [display(r) for r in rows]
        if format != "json":
            title = f"Commission by {group_by}"
            return download(shown, context, format, f"reelroi-commission-{group_by}", title, bom)
        totals = {
            name: money(sum((r[name] for r in rows), Decimal(0))) for name in ("gross", "refunds", "net", "commission")
        }
        return {"group_by": group_by, "meta": context.meta(), "rows": shown, "totals": totals}

    return router
