"""The FastAPI application behind ``reelroi serve``.

No interactive docs page: FastAPI's ``/docs`` and ``/redoc`` load their scripts
from a public CDN onto this origin, where the pages keep the token. The OpenAPI
document itself is served at ``/openapi.json``.
"""

import threading
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from clickhouse_connect.driver.client import Client
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import SecretStr

from attribution.errors import SinkError
from reelroi import __version__
from reelroi.api.access import Forbidden, require_admin, scope_commission, scope_roi
from reelroi.api.hardening import Hardened
from reelroi.api.statements import statements_router
from reelroi.formatting import csv_text, display, money, roi, roi_columns
from sinks.analytics import RoiFilter, commission_grouped, roi_grouped, roi_totals
from sinks.reports import recent_rejections, rejection_counts
from sinks.tokens import TokenInfo, verify_token
from sinks.writer import load_settings
from streams.metrics import BUSINESS, BUSINESS_PATH, PIPELINE_PATH, bearer_matches

WEB = Path(__file__).resolve().parent.parent / "web"
T = TypeVar("T")

IdParam = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
DateFrom = Annotated[date | None, Query(alias="from", description="first date, YYYY-MM-DD")]
DateTo = Annotated[date | None, Query(alias="to", description="last date, YYYY-MM-DD")]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv download")]


class Unauthorized(Exception):
    pass


class Store:
    """One ClickHouse client shared by request threads (the embedded engine wants one caller at a time)."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db
        self.lock = threading.Lock()  # the watcher takes it too

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            return fn(self.client, self.db, *args, **kwargs)


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    """Display form; ROI columns for rows that carry spend and revenue."""
    if "spend" in row and "revenue_total" in row:
        return {**display(row), **roi_columns(row)}
    return display(row)


def _csv(rows: list[dict[str, Any]], filename: str) -> Response:
    return Response(
        csv_text(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def create_app(store: Store, metrics_token: SecretStr | None = None) -> FastAPI:
    """The API and pages; ``metrics_token`` set: business series at ``/metrics/business`` behind it."""
    app = FastAPI(
        title="reelroi",
        version=__version__,
        description="ROI for ad buyers and commission for creators. Send `Authorization: Bearer <token>`.",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(Hardened)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {"param": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
            for e in exc.errors()
        ]
        return JSONResponse({"error": "bad request", "details": details}, status_code=400)

    @app.exception_handler(Unauthorized)
    async def unauthorized(_: Request, exc: Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc)}, status_code=401, headers={"WWW-Authenticate": 'Bearer realm="reelroi"'}
        )

    @app.exception_handler(Forbidden)
    async def forbidden(_: Request, exc: Forbidden) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    @app.exception_handler(SinkError)
    async def store_failed(_: Request, exc: SinkError) -> JSONResponse:
        return JSONResponse({"error": "the database is unavailable"}, status_code=503)

    def principal(authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> TokenInfo:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        who = store.run(verify_token, authorization.removeprefix("Bearer ").strip())
        if who is None:
            raise Unauthorized("invalid or revoked token")
        return who

    Who = Annotated[TokenInfo, Depends(principal)]

    def roi_filter(
        date_from: DateFrom = None,
        date_to: DateTo = None,
        source_kind: Annotated[Literal["campaign", "plan", "organic"] | None, Query()] = None,
        source_id: IdParam = None,
        platform: Annotated[Literal["douyin", "kuaishou", "tencent", "tiktok", "other"] | None, Query()] = None,
        drama_id: IdParam = None,
        buyer_id: IdParam = None,
    ) -> RoiFilter:
        return RoiFilter(date_from, date_to, source_kind, source_id, platform, drama_id, buyer_id)

    Filter = Annotated[RoiFilter, Depends(roi_filter)]

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(PIPELINE_PATH, include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus text format: pipeline and process figures, no business series; public, like /healthz."""
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)

    if metrics_token is not None:

        @app.get(BUSINESS_PATH, include_in_schema=False)
        def business_metrics(
            authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
        ) -> Response:
            """The watcher's spend, ROI and revenue gauges, for a scraper holding ``REELROI_METRICS_TOKEN``."""
            if not bearer_matches(authorization, metrics_token):
                raise Unauthorized("business metrics need the bearer token (REELROI_METRICS_TOKEN)")
            return Response(generate_latest(BUSINESS), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/me", summary="Who this token is")
    def me(who: Who) -> dict[str, str]:
        settings = store.run(load_settings)
        return {
            "role": who.role,
            "subject": who.subject,
            "name": who.name,
            "currency": settings.get("policy.currency", "CNY"),
            "tz": settings.get("policy.tz", "Asia/Shanghai"),
        }

    @app.get("/api/v1/roi", summary="ROI rows, filtered and grouped, with totals")
    def roi_api(
        who: Who,
        wanted: Filter,
        group_by: Annotated[
            Literal["source_date", "source", "campaign", "drama", "platform", "buyer", "date"], Query()
        ] = "source_date",
        format: Format = "json",
    ) -> Any:
        scoped = scope_roi(who, wanted)
        rows = [_shown(r) for r in store.run(roi_grouped, scoped, group_by)]
        if format == "csv":
            return _csv(rows, f"reelroi-roi-{group_by}.csv")
        totals = _shown(store.run(roi_totals, scoped))
        return {"group_by": group_by, "rows": rows, "totals": totals}

    @app.get("/api/v1/roi/curve", summary="Cohort curve: revenue and ROI at D0, D1, D3, D7 and total")
    def curve_api(who: Who, wanted: Filter) -> dict[str, Any]:
        t = store.run(roi_totals, scope_roi(who, wanted))
        spend = t.get("spend", Decimal(0))
        points = []
        for day in ("d0", "d1", "d3", "d7", "total"):
            revenue = t.get(f"revenue_{day}", Decimal(0))
            points.append({"day": day, "revenue": money(revenue), "roi": roi(revenue, spend)})
        return {"spend": money(spend), "points": points}

    @app.get("/api/v1/commission", summary="Commission by creator, plan and day (or grouped), with totals")
    def commission_api(
        who: Who,
        date_from: DateFrom = None,
        date_to: DateTo = None,
        plan_id: IdParam = None,
        creator_id: IdParam = None,
        group_by: Annotated[Literal["detail", "plan", "day"], Query()] = "detail",
        format: Format = "json",
    ) -> Any:
        creator = scope_commission(who, creator_id)
        rows = store.run(commission_grouped, creator, date_from, date_to, plan_id, group_by)
        shown = [_shown(r) for r in rows]
        if format == "csv":
            return _csv(shown, f"reelroi-commission-{group_by}.csv")
        totals = {
            name: money(sum((r[name] for r in rows), Decimal(0))) for name in ("gross", "refunds", "net", "commission")
        }
        return {"group_by": group_by, "rows": shown, "totals": totals}

    @app.get("/api/v1/rejections", summary="Rejection counts by reason, duplicates and the latest rejected records")
    def rejections_api(who: Who, limit: Annotated[int, Query(ge=0, le=500)] = 20) -> dict[str, Any]:
        require_admin(who)
        counts = store.run(rejection_counts)
        recent = store.run(recent_rejections, limit)
        return {**counts, "recent": recent}

    app.include_router(statements_router(store, principal))

    if (WEB / "static").is_dir():
        app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

        def page(name: str) -> Callable[[], FileResponse]:
            def serve() -> FileResponse:
                return FileResponse(WEB / name, media_type="text/html; charset=utf-8")

            return serve

        for path, name in (("/", "index.html"), ("/buyer", "buyer.html"), ("/creator", "creator.html")):
            app.add_api_route(path, page(name), include_in_schema=False, methods=["GET"])

    return app


def iter_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, for the access-control tests."""
    for route in app.routes:
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if path.startswith("/api/"):
            for method in sorted(methods):
                yield method, path
