"""Budgets: per tenant or agent, per day or month, hard or soft; and their live feed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.auth import Caller, Principal
from api.budget_feed import budget_feed_response
from api.runtime import Rt
from domain.budgets import Budget, parse_scope
from domain.errors import InvalidRequest

router = APIRouter(prefix="/api/v1/budgets", tags=["budgets"])


def _may_read(who: Principal) -> None:
    """Budgets are read with `analytics:read` or `tenant:admin`."""
    if "tenant:admin" not in who.scopes:
        who.require("analytics:read")


@router.get("/events")
async def budget_events(
    who: Caller,
    runtime: Rt,
    last_event_id: str | None = Header(default=None),
    after: str | None = Query(default=None, description="resume after this event id"),
    heartbeat_s: float = Query(default=15.0, ge=0.5, le=300),
) -> StreamingResponse:
    """The tenant's budget events as SSE (`budget_set`, `budget_removed`,
    `budget_threshold_crossed`), each with an `id:`; from the first unless `Last-Event-ID`
    (or `?after=`) says where the client stopped."""
    _may_read(who)
    position = last_event_id if last_event_id is not None else after
    if position and not position.isdigit():
        raise InvalidRequest(
            "Last-Event-ID (or after) must be a non-negative integer event id",
            details={"param": "after"},
        )
    return budget_feed_response(runtime.read_models, who.tenant_id, int(position or 0),
                                heartbeat_s)  # fmt: skip


@router.get("")
async def list_budgets(who: Caller, runtime: Rt) -> dict[str, Any]:
    """Every budget of the tenant, with this period's spent, reserved and remaining."""
    _may_read(who)
    return await runtime.tenant(who.tenant_id).list_budgets()


@router.put("/{scope}")
async def set_budget(scope: str, body: Budget, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Set the budget of `tenant` or `agent:<agent_id>` (in force for the next execution)."""
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).set_budget(
        parse_scope(scope), body.model_dump(), who.by
    )


@router.get("/{scope}")
async def get_budget(scope: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    _may_read(who)
    return await runtime.tenant(who.tenant_id).get_budget(parse_scope(scope))


@router.delete("/{scope}")
async def remove_budget(scope: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).remove_budget(parse_scope(scope), who.by)
