"""The analytics API (scope `analytics:read`, the caller's tenant only): usage, model
comparison and error patterns from the metrics projection; JSON, or CSV for spreadsheets."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse, Response

from api.auth import Caller, Principal
from api.runtime import Rt, Runtime
from domain.analytics_query import TimeRange, as_csv, group_keys

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

From = Annotated[str | None, Query(alias="from", description="ISO 8601 or unix seconds")]
To = Annotated[str | None, Query(description="ISO 8601 or unix seconds; default now")]
Format = Annotated[str | None, Query(alias="format", pattern="^(json|csv)$")]


def _answer(body: dict[str, Any], rows_key: str, accept: str | None, fmt: str | None) -> Response:
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in (accept or ""))
    if wants_csv:
        return Response(as_csv(body[rows_key]), media_type="text/csv; charset=utf-8")
    return JSONResponse(body)


@router.get("/usage")
async def usage(
    who: Caller,
    runtime: Rt,
    start: From = None,
    to: To = None,
    group_by: str | None = Query(
        default=None,
        description="day|hour|agent|model|provider|status|kind, or several comma-separated",
    ),
    agent_id: str | None = None,
    model: str | None = Query(default=None, description="the resolved model"),
    fmt: Format = None,
    accept: str | None = Header(default=None),
) -> Response:
    """Executions, outcomes, latency and TTFT percentiles, tokens and cost, per group."""
    who.require("analytics:read")
    span = TimeRange.of(start, to, time.time())
    keys = group_keys(group_by)
    rows = await runtime.read_models.analytics(
        "usage", who.tenant_id, span.start, span.end,
        group_by=keys, filters={"agent_id": agent_id, "model": model},
    )  # fmt: skip
    return _answer({**span.as_api(), "group_by": keys, "rows": rows}, "rows", accept, fmt)


@router.get("/models")
async def models(
    who: Caller,
    runtime: Rt,
    start: From = None,
    to: To = None,
    fmt: Format = None,
    accept: str | None = Header(default=None),
) -> Response:
    """The tenant's models side by side: latency, cost, success, tokens per success."""
    return await _listing("models", who, runtime, start, to, fmt, accept)


@router.get("/errors")
async def errors(
    who: Caller,
    runtime: Rt,
    start: From = None,
    to: To = None,
    fmt: Format = None,
    accept: str | None = Header(default=None),
) -> Response:
    """Failure patterns: error type, provider, model, count, first and last seen, examples."""
    return await _listing("errors", who, runtime, start, to, fmt, accept)


async def _listing(
    question: str,
    who: Principal,
    runtime: Runtime,
    start: str | None,
    to: str | None,
    fmt: str | None,
    accept: str | None,
) -> Response:
    """`{"from", "to", <question>: rows}` for a question without grouping."""
    who.require("analytics:read")
    span = TimeRange.of(start, to, time.time())
    rows = await runtime.read_models.analytics(question, who.tenant_id, span.start, span.end)
    return _answer({**span.as_api(), question: rows}, question, accept, fmt)
