"""The FastAPI application behind ``reelroi serve``.

No interactive docs page: FastAPI's ``/docs`` and ``/redoc`` load their scripts
from a public CDN onto this origin, where the pages keep the token. The OpenAPI
document itself is served at ``/openapi.json``. Report routes live in
``reelroi/api/reports.py``; what route modules share, in ``reelroi/api/deps.py``.
"""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import SecretStr

from attribution.errors import SinkError
from reelroi import __version__
from reelroi.api.access import Forbidden, require_admin
from reelroi.api.deps import BadRequest, Store, Unauthorized, principal_of
from reelroi.api.hardening import Hardened
from reelroi.api.postbacks import postbacks_router
from reelroi.api.reports import report_routes
from reelroi.api.statements import statements_router
from sinks.reports import recent_rejections, rejection_counts
from sinks.tokens import TokenInfo
from sinks.writer import load_settings
from streams.metrics import BUSINESS, BUSINESS_PATH, PIPELINE_PATH, bearer_matches

__all__ = ["WEB", "Store", "all_routes", "create_app", "iter_routes"]

WEB = Path(__file__).resolve().parent.parent / "web"


def _bad_request(details: list[dict[str, str]]) -> JSONResponse:
    return JSONResponse({"error": "bad request", "details": details}, status_code=400)


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
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _bad_request(
            [
                {"param": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "problem": e["msg"]}
                for e in exc.errors()
            ]
        )

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, exc: BadRequest) -> JSONResponse:
        return _bad_request([{"param": exc.param, "problem": exc.problem}])

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

    Who = Annotated[TokenInfo, Depends(principal_of(store))]

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

    app.include_router(report_routes(store))
    app.include_router(statements_router(store, principal_of(store)))
    app.include_router(postbacks_router(store, principal_of(store)))

    @app.get("/api/v1/rejections", summary="Rejection counts by reason, duplicates and the latest rejected records")
    def rejections_api(who: Who, limit: Annotated[int, Query(ge=0, le=500)] = 20) -> dict[str, Any]:
        require_admin(who)
        counts = store.run(rejection_counts)
        recent = store.run(recent_rejections, limit)
        return {**counts, "recent": recent}

    if (WEB / "static").is_dir():
        app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")

        def page(name: str) -> Callable[[], FileResponse]:
            def serve() -> FileResponse:
                return FileResponse(WEB / name, media_type="text/html; charset=utf-8")

            return serve

        for path, name in (("/", "index.html"), ("/buyer", "buyer.html"), ("/creator", "creator.html")):
            app.add_api_route(path, page(name), include_in_schema=False, methods=["GET"])

    return app


def all_routes(app: FastAPI) -> Iterator[Any]:
    """Every route of the app, including those of included routers (which FastAPI may keep as one entry)."""
    for route in app.routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from original.routes
        else:
            yield route


def iter_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, for the access-control tests."""
    for route in all_routes(app):
        methods = getattr(route, "methods", None) or set()
        path = getattr(route, "path", "")
        if path.startswith("/api/"):
            for method in sorted(methods):
                yield method, path
