"""Execution history, read from the history projection."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.admission import Admitting
from api.auth import Caller
from api.ids import UUID_PATTERN
from api.runtime import Rt
from api.streaming import sse_response
from domain.errors import Conflict, InvalidRequest, NotFound

router = APIRouter(prefix="/api/v1/executions", tags=["executions"])


@router.get("/{execution_id}")
async def get_execution(execution_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("executions:read")
    found = await runtime.read_models.get_execution(who.tenant_id, execution_id)
    if found is None:
        raise NotFound(f"execution {execution_id} not found")
    if found["status"] == "running" and found["stream"]:
        live = await runtime.tenant(who.tenant_id).live_state(execution_id)
        if live is not None:
            found["usage"] = live["usage"] or found["usage"]
            found["response"] = {"content": live["content"], "tool_calls": []}
            found["last_event_id"] = live["last_event_id"]
    return found


@router.get("/{execution_id}/stream")
async def resume_stream(
    execution_id: str,
    who: Caller,
    runtime: Rt,
    admission: Admitting,
    last_event_id: str | None = Header(default=None),
    after: str | None = Query(default=None, alias="last_event_id"),
    heartbeat_s: float = Query(default=15.0, ge=0.5, le=300),
) -> StreamingResponse:
    """The events after `Last-Event-ID` (header, or `?last_event_id=`), each once and in order:
    live while the execution runs, replayed from the store once it has finished."""
    who.require("executions:read")
    if not UUID_PATTERN.match(execution_id):
        raise NotFound(f"execution {execution_id} not found")
    position = last_event_id if last_event_id is not None else after
    if position is None or position == "":
        position = "0"
    if not position.isdigit():
        raise InvalidRequest("Last-Event-ID must be a non-negative integer event id")
    admission.stream_room(runtime.config().ingress)
    opened = await runtime.tenant(who.tenant_id).resume_stream(execution_id, int(position))
    return sse_response(opened, heartbeat_s)


@router.post("/{execution_id}/cancel")
async def cancel_execution(execution_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Cancel a running streamed execution (its stream ends with `execution_cancelled` for
    every reader); the execution as history records it. An execution that already ended is a
    409 naming its status; a whole request is cancelled by closing its connection."""
    who.require("agents:execute")
    if not UUID_PATTERN.match(execution_id):
        raise NotFound(f"execution {execution_id} not found")
    cancelled = await runtime.tenant(who.tenant_id).cancel_stream(execution_id)
    found = await runtime.read_models.get_execution(who.tenant_id, execution_id)
    if found is None:
        raise NotFound(f"execution {execution_id} not found")
    if not cancelled and found["status"] != "cancelled":
        raise Conflict(
            f"execution {execution_id} is {found['status']}, not a running stream: "
            "only a running streamed execution can be cancelled by id",
            execution_id=execution_id,
            details={"status": found["status"]},
        )
    return found


@router.get("")
async def list_executions(
    who: Caller,
    runtime: Rt,
    agent_id: str | None = None,
    status: Literal["running", "completed", "failed", "cancelled"] | None = None,
    limit: int = Query(default=50, ge=1, le=500),
    before: float | None = Query(default=None, description="unix seconds: started before"),
    since: float | None = Query(default=None, description="unix seconds: started then or after"),
    kind: Literal[
        "agent_execution", "chat_completion", "imported", "judge", "experiment_run",
        "collaboration_step",
    ] | None = None,
) -> dict[str, Any]:
    """Newest first; pass the last item's `started_at` as `before` for the next page."""
    who.require("executions:read")
    filters = {"agent_id": agent_id, "status": status, "limit": limit, "before": before,
               "since": since, "kind": kind}  # fmt: skip
    items = await runtime.read_models.list_executions(who.tenant_id, filters)
    next_before = items[-1]["started_at"] if len(items) == limit else None
    return {"executions": items, "next_before": next_before}
