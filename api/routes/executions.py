"""Execution history, read from the history projection."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query

from api import runtime
from api.auth import Caller
from domain.errors import NotFound

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])


@router.get("/{execution_id}")
async def get_execution(execution_id: str, who: Caller) -> dict[str, Any]:
    who.require("executions:read")
    found = await runtime.query("get_execution", who.tenant_id, execution_id)
    if found is None:
        raise NotFound(f"execution {execution_id} not found")
    return found


@router.get("")
async def list_executions(
    who: Caller,
    agent_id: str | None = None,
    status: Literal["running", "completed", "failed", "cancelled"] | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    before: float | None = None,
) -> dict[str, Any]:
    """Newest first; pass the last item's `started_at` as `before` for the next page."""
    who.require("executions:read")
    filters = {"agent_id": agent_id, "status": status, "limit": limit, "before": before}
    items = await runtime.query("list_executions", who.tenant_id, filters)
    next_before = items[-1]["started_at"] if len(items) == limit else None
    return {"executions": items, "next_before": next_before}
