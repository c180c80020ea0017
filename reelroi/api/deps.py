"""What every route module shares: the store, the caller's token, and the query parameters of reports.

A route module builds an ``APIRouter`` from a ``Store`` and uses ``principal_of(store)``
as its authentication dependency; ``create_app`` includes the routers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date
from typing import Annotated, Any, Literal, TypeVar

from clickhouse_connect.driver.client import Client
from fastapi import Depends, Header, Query

from reelroi.labels import ReportContext, report_context
from sinks.analytics import RoiFilter
from sinks.tokens import TokenInfo, verify_token

T = TypeVar("T")

IdParam = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]
DateFrom = Annotated[date | None, Query(alias="from", description="first date, YYYY-MM-DD")]
DateTo = Annotated[date | None, Query(alias="to", description="last date, YYYY-MM-DD")]
Format = Annotated[Literal["json", "csv", "xlsx"], Query(description="json (default), csv or xlsx download")]
Bom = Annotated[bool, Query(description="csv: start with a UTF-8 byte-order mark, so Excel reads Chinese names")]
SourceKind = Annotated[Literal["campaign", "plan", "organic"] | None, Query()]
Platform = Annotated[Literal["douyin", "kuaishou", "tencent", "tiktok", "other"] | None, Query()]


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

    def context(self) -> ReportContext:
        """The saved policy, ``as_of`` and rates warning, read now."""
        return self.run(report_context)


def principal_of(store: Store) -> Callable[..., TokenInfo]:
    """The dependency that turns ``Authorization: Bearer <token>`` into the token's principal, or 401."""

    def principal(authorization: Annotated[str | None, Header(include_in_schema=False)] = None) -> TokenInfo:
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("missing bearer token")
        found = store.run(verify_token, authorization.removeprefix("Bearer ").strip())
        if found is None:
            raise Unauthorized("invalid or revoked token")
        return found

    return principal


def roi_filter(
    date_from: DateFrom = None,
    date_to: DateTo = None,
    source_kind: SourceKind = None,
    source_id: IdParam = None,
    platform: Platform = None,
    drama_id: IdParam = None,
    buyer_id: IdParam = None,
) -> RoiFilter:
    """The ROI filters of the query string (cohort dates, source, platform, drama, buyer)."""
    return RoiFilter(date_from, date_to, source_kind, source_id, platform, drama_id, buyer_id)


def undated_filter(
    source_kind: SourceKind = None,
    source_id: IdParam = None,
    platform: Platform = None,
    drama_id: IdParam = None,
    buyer_id: IdParam = None,
) -> RoiFilter:
    """The ROI filters without dates, for routes that choose the dates themselves."""
    return RoiFilter(None, None, source_kind, source_id, platform, drama_id, buyer_id)


Filter = Annotated[RoiFilter, Depends(roi_filter)]
UndatedFilter = Annotated[RoiFilter, Depends(undated_filter)]


class BadRequest(Exception):
    """A parameter that passed its type but not its meaning; answered 400 like a validation error."""

    def __init__(self, param: str, problem: str) -> None:
        super().__init__(problem)
        self.param = param
        self.problem = problem
