"""The analytics API (scope `analytics:read`, the caller's tenant only): usage, model
comparison and error patterns from the metrics projection; JSON, or CSV for spreadsheets."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, Principal
from api.runtime import Rt, Runtime
from domain.analytics_query import TimeRange, as_csv, group_keys

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])
GROUP_BY_HELP = "day|hour|agent|model|provider|status|kind, or several comma-separated"


@dataclass
class _Ranged:
    """What every analytics question takes: the time range and the answer's format."""

    start: Annotated[str | None, Query(alias="from", description="ISO 8601 or unix seconds")] = None
    to: Annotated[str | None, Query(description="ISO 8601 or unix seconds; default now")] = None
    fmt: Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")] = None
    accept: Annotated[str | None, Header()] = None

    def span(self) -> TimeRange:
        return TimeRange.of(self.start, self.to, time.time())

    def answer(
        self, span: TimeRange, rows_key: str, rows: list[dict[str, Any]], **extra: Any
    ) -> Response:
        """`{"from", "to", **extra, rows_key: rows}`, or the rows as CSV when asked for."""
        wants_csv = self.fmt == "csv" or (self.fmt is None and "text/csv" in (self.accept or ""))
        if wants_csv:
            return Response(as_csv(rows), media_type="text/csv; charset=utf-8")
        return JSONResponse({**span.as_api(), **extra, rows_key: rows})


Ranged = Annotated[_Ranged, Depends()]


@router.get("/usage")
async def usage(
    who: Caller,
    runtime: Rt,
    query: Ranged,
    group_by: str | None = Query(default=None, description=GROUP_BY_HELP),
    agent_id: str | None = None,
    model: str | None = Query(default=None, description="the resolved model"),
) -> Response:
    """Executions, outcomes, latency and TTFT percentiles, tokens and cost, per group."""
    who.require("analytics:read")
    span, keys = query.span(), group_keys(group_by)
    rows = await runtime.read_models.analytics(
        "usage", who.tenant_id, span.start, span.end,
        group_by=keys, filters={"agent_id": agent_id, "model": model},
    )  # fmt: skip
    return query.answer(span, "rows", rows, group_by=keys)


@router.get("/models")
async def models(who: Caller, runtime: Rt, query: Ranged) -> Response:
    """The tenant's models side by side: latency, cost, success, tokens per success."""
    return await _listing("models", who, runtime, query)


@router.get("/errors")
async def errors(who: Caller, runtime: Rt, query: Ranged) -> Response:
    """Failure patterns: error type, provider, model, count, first and last seen, examples."""
    return await _listing("errors", who, runtime, query)


async def _listing(question: str, who: Principal, runtime: Runtime, query: _Ranged) -> Response:
    """`{"from", "to", <question>: rows}` for a question without grouping."""
    who.require("analytics:read")
    span = query.span()
    rows = await runtime.read_models.analytics(question, who.tenant_id, span.start, span.end)
    return query.answer(span, question, rows)


@router.get("/collaborations")
async def collaborations(
    who: Caller, runtime: Rt, query: Ranged, collaboration_id: str | None = None
) -> Response:
    """Per collaboration: runs by status, completion rate, duration p50/p95, cost per run,
    and per step its outcomes, attempts, cost per run and duration p50."""
    who.require("analytics:read")
    span = query.span()
    found = await runtime.read_models.collaboration_analytics(
        who.tenant_id, span.start, span.end, collaboration_id
    )
    return JSONResponse({**span.as_api(), "collaborations": found["collaborations"]})
