"""Collaborations (`actors.collaborations`): saved, versioned DAGs of agent steps, their runs
(whole or as SSE), the runs' state, stream, listing and cancel."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Caller, Principal
from api.ids import UUID_PATTERN
from api.runtime import Rt, Runtime
from domain import sse
from domain.collaboration import CollaborationDefinition
from domain.errors import InvalidRequest, NotFound

router = APIRouter(prefix="/api/v1", tags=["collaborations"])
RUN_ENDS = ("run_complete", "error")


class RunRequest(BaseModel):
    """`POST /api/v1/collaborations/{id}/run`: the run's inputs."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, max_length=50)


class InlineRunRequest(RunRequest):
    """`POST /api/v1/collaborations/run`: a definition sent with the run, not saved."""

    definition: CollaborationDefinition


class CollaborationPatch(BaseModel):
    """The fields to change; the result is checked whole, as a new definition would be."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    inputs: dict[str, dict[str, Any] | None] | None = Field(default=None, max_length=50)
    steps: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=50)
    output: str | None = None


def _checked(kind: str, given: str) -> str:
    if not UUID_PATTERN.match(given):
        raise NotFound(f"{kind} {given} not found")
    return given


# definitions


@router.post("/collaborations", status_code=201)
async def create_collaboration(
    body: CollaborationDefinition, who: Caller, runtime: Rt
) -> dict[str, Any]:
    """Save a definition (version 1); a cycle, an unknown agent, step or input, or a model
    that does not route is a 400."""
    who.require("agents:write")
    definition = body.model_dump(mode="json")
    return await runtime.tenant(who.tenant_id).create_collaboration(definition, who.by)


@router.get("/collaborations")
async def list_collaborations(who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:read")
    return {"collaborations": await runtime.tenant(who.tenant_id).list_collaborations()}


@router.get("/collaborations/{collaboration_id}")
async def get_collaboration(collaboration_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:read")
    found = _checked("collaboration", collaboration_id)
    return await runtime.tenant(who.tenant_id).get_collaboration(found)


@router.patch("/collaborations/{collaboration_id}")
async def update_collaboration(
    collaboration_id: str, body: CollaborationPatch, who: Caller, runtime: Rt
) -> dict[str, Any]:
    """A new version; runs already started keep the version they started with."""
    who.require("agents:write")
    found = _checked("collaboration", collaboration_id)
    changes = body.model_dump(exclude_unset=True)
    return await runtime.tenant(who.tenant_id).update_collaboration(found, changes, who.by)


@router.delete("/collaborations/{collaboration_id}")
async def delete_collaboration(collaboration_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:write")
    found = _checked("collaboration", collaboration_id)
    return await runtime.tenant(who.tenant_id).delete_collaboration(found, who.by)


# runs


async def _start(
    who: Principal,
    runtime: Runtime,
    saved: str | None,
    definition: dict[str, Any] | None,
    inputs: dict[str, Any],
) -> dict[str, Any]:
    who.require("agents:execute")
    tenant = runtime.tenant(who.tenant_id)
    return await tenant.run_collaboration(str(uuid.uuid4()), saved, definition, inputs, who.by)


@router.post("/collaborations/run")
async def run_inline(body: InlineRunRequest, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Run a definition sent inline, waiting for the run's end (as `…/{id}/run`)."""
    definition = body.definition.model_dump(mode="json")
    started = await _start(who, runtime, None, definition, body.inputs)
    return await runtime.tenant(who.tenant_id).wait_collaboration_run(started["run_id"])


@router.post("/collaborations/run/stream")
async def run_inline_stream(body: InlineRunRequest, who: Caller, runtime: Rt) -> StreamingResponse:
    """Run a definition sent inline, as Server-Sent Events (as `…/{id}/run/stream`)."""
    definition = body.definition.model_dump(mode="json")
    started = await _start(who, runtime, None, definition, body.inputs)
    return _stream(who, runtime, started["run_id"], 0)


@router.post("/collaborations/{collaboration_id}/run")
async def run_saved(
    collaboration_id: str, body: RunRequest, who: Caller, runtime: Rt
) -> dict[str, Any]:
    """Run the saved collaboration and wait for its end: `{"run_id", "status", "output",
    "steps": [{"id", "status", "execution_id", "output", "usage", …}], "usage", …}`. A
    client that goes away leaves the run running (read it at `/collaboration-runs/{id}`)."""
    found = _checked("collaboration", collaboration_id)
    started = await _start(who, runtime, found, None, body.inputs)
    return await runtime.tenant(who.tenant_id).wait_collaboration_run(started["run_id"])


@router.post("/collaborations/{collaboration_id}/run/stream")
async def run_saved_stream(
    collaboration_id: str, body: RunRequest, who: Caller, runtime: Rt
) -> StreamingResponse:
    """The run as Server-Sent Events: `run_start`, `step_start`, each step's own execution
    events tagged with `step_id`, `step_complete`/`step_failed`/`step_skipped`, then
    `run_complete` or `error`. Every event has an id; resume at
    `/collaboration-runs/{run_id}/stream` with `Last-Event-ID`."""
    found = _checked("collaboration", collaboration_id)
    started = await _start(who, runtime, found, None, body.inputs)
    return _stream(who, runtime, started["run_id"], 0)


@router.get("/collaboration-runs")
async def list_runs(
    who: Caller,
    runtime: Rt,
    status: Literal["running", "completed", "failed", "cancelled"] | None = None,
    collaboration_id: str | None = Query(default=None, max_length=100),
    before: float | None = Query(default=None, description="unix seconds: older runs"),
    limit: int = Query(default=50, ge=1, le=500),
) -> dict[str, Any]:
    """The tenant's runs, newest first; pass the last one's `started_at` as `before`."""
    who.require("executions:read")
    filters = {
        "status": status,
        "collaboration_id": collaboration_id,
        "before": before,
        "limit": limit,
    }
    runs = await runtime.read_models.list_collaboration_runs(who.tenant_id, filters)
    return {"runs": runs}


@router.get("/collaboration-runs/{run_id}")
async def get_run(run_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("executions:read")
    found = _checked("collaboration run", run_id)
    return await runtime.tenant(who.tenant_id).get_collaboration_run(found)


@router.get("/collaboration-runs/{run_id}/stream")
async def stream_run(
    run_id: str,
    who: Caller,
    runtime: Rt,
    last_event_id: str | None = Header(default=None),
    after: int | None = Query(default=None, ge=0, alias="last_event_id"),
) -> StreamingResponse:
    """The run's stream from the start, or after `Last-Event-ID`: live while it runs, from
    the store once it has ended."""
    who.require("executions:read")
    found = _checked("collaboration run", run_id)
    await runtime.tenant(who.tenant_id).get_collaboration_run(found)  # 404 before the stream
    position = last_event_id if last_event_id is not None else str(after or 0)
    if not position.isdigit():
        raise InvalidRequest("Last-Event-ID must be a non-negative integer event id")
    return _stream(who, runtime, found, int(position))


@router.post("/collaboration-runs/{run_id}/cancel")
async def cancel_run(run_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Cancel its running steps and end it `cancelled`; 409 once it has ended."""
    who.require("agents:execute")
    found = _checked("collaboration run", run_id)
    return await runtime.tenant(who.tenant_id).cancel_collaboration_run(found)


def _stream(who: Principal, runtime: Runtime, run_id: str, after: int) -> StreamingResponse:
    tenant = runtime.tenant(who.tenant_id)

    async def events() -> AsyncIterator[bytes]:
        seen = after
        while True:
            got = await tenant.collaboration_run_events(run_id, seen)
            for item in got["events"]:
                seen = item["id"]
                yield sse.frame(item["id"], item["event"], item["data"])
            if got["ended"]:
                return
            if not got["events"]:
                yield sse.comment("waiting")

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "x-cb-run-id": run_id},
    )
