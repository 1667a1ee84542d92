"""Replay experiments: a tenant's recorded executions run again on other models or agents
(`actors.experiments`), reported side by side."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from api.auth import Caller
from api.ids import UUID_PATTERN
from api.runtime import Rt
from domain import sse
from domain.analytics_query import TimeRange
from domain.errors import InvalidRequest, NotFound
from domain.experiment import SOURCE_KINDS, ExperimentRequest, pick_sources, report, run_ids

router = APIRouter(prefix="/api/v1/experiments", tags=["experiments"])
SCAN = 500  # history rows read per kind to choose the sources from


def _checked(experiment_id: str) -> str:
    if not UUID_PATTERN.match(experiment_id):
        raise NotFound(f"experiment {experiment_id} not found")
    return experiment_id


async def _report(runtime: Any, tenant_id: str, state: dict[str, Any]) -> dict[str, Any]:
    records = await runtime.read_models.get_executions(tenant_id, run_ids(state))
    return report(state, records)


@router.post("", status_code=201)
async def start_experiment(body: ExperimentRequest, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Replay the recorded executions `source` picks (newest first) on every variant, in the
    background; the experiment as `GET` shows it, with no run yet."""
    who.require("agents:execute")
    source = body.source
    span = TimeRange.of(source.start, source.end, time.time())
    rows: list[dict[str, Any]] = []
    for kind in SOURCE_KINDS:
        filters = {"agent_id": source.agent_id, "status": source.status, "limit": SCAN,
                   "before": span.end, "kind": kind}  # fmt: skip
        rows += await runtime.read_models.list_executions(who.tenant_id, filters)
    sources = pick_sources(rows, span.start, span.end, source.limit)
    tenant = runtime.tenant(who.tenant_id)
    state = await tenant.start_experiment(body.model_dump(mode="json", by_alias=True), sources,
                                          who.by)  # fmt: skip
    return await _report(runtime, who.tenant_id, state)


@router.get("")
async def list_experiments(who: Caller, runtime: Rt) -> dict[str, Any]:
    """The tenant's experiments, newest first (the last 100): status, progress, spend."""
    who.require("executions:read")
    return {"experiments": await runtime.tenant(who.tenant_id).list_experiments()}


@router.get("/{experiment_id}")
async def get_experiment(experiment_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Per variant: runs, success rate, latency p50/p95, tokens, cost, mean judged score;
    per source execution: its original output beside each variant's."""
    who.require("executions:read")
    state = await runtime.tenant(who.tenant_id).get_experiment(_checked(experiment_id))
    return await _report(runtime, who.tenant_id, state)


@router.post("/{experiment_id}/cancel")
async def cancel_experiment(experiment_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Stop it: no run starts, the ones in flight are cancelled; 409 once it has ended."""
    who.require("agents:execute")
    state = await runtime.tenant(who.tenant_id).cancel_experiment(_checked(experiment_id))
    return await _report(runtime, who.tenant_id, state)


@router.get("/{experiment_id}/stream")
async def stream_experiment(
    experiment_id: str,
    who: Caller,
    runtime: Rt,
    last_event_id: str | None = Header(default=None),
    after: int | None = Query(default=None, ge=0, alias="last_event_id"),
) -> StreamingResponse:
    """Progress as Server-Sent Events: `experiment_start`, a `run_complete` per run (id: its
    number; resume with `Last-Event-ID`), then `experiment_complete` with how it ended."""
    who.require("executions:read")
    tenant = runtime.tenant(who.tenant_id)
    state = await tenant.get_experiment(_checked(experiment_id))  # 404 before the stream
    position = last_event_id if last_event_id is not None else str(after or 0)
    if not position.isdigit():
        raise InvalidRequest("Last-Event-ID must be a non-negative integer event id")

    async def events() -> AsyncIterator[bytes]:
        seen = int(position)
        if seen == 0:
            opened = {k: state[k] for k in ("id", "name", "status", "created_at")}
            yield sse.frame(None, "experiment_start", opened)
        while True:
            got = await tenant.experiment_progress(experiment_id, seen)
            for run in got["runs"]:
                seen += 1
                yield sse.frame(seen, "run_complete", run)
            if got["status"] != "running" and seen >= got["recorded"]:
                ended = {"id": experiment_id, "status": got["status"], "stopped": got["stopped"]}
                yield sse.frame(None, "experiment_complete", ended)
                return
            if not got["runs"]:
                yield sse.comment("waiting")

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})  # fmt: skip
