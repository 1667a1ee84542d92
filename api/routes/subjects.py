"""A tenant's data subjects (the end users its executions are about) and its retention:
list, export and erase one subject's data; keep payloads and metrics for a while only."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import StreamingResponse

from api.auth import Caller
from api.routes.admin import note_access
from api.runtime import Rt
from domain.retention import Retention
from domain.shredding import subject_ref

router = APIRouter(prefix="/api/v1", tags=["privacy"])
# a subject may hold `/` (sent escaped, decoded before routing): the export route comes
# first, so a GET of `…/export` exports (a subject that itself ends in `/export` cannot be
# listed, only exported and erased)
Subject = Path(min_length=1, max_length=256, description="the `subject` (or `user`) sent")


@router.get("/subjects/{subject:path}/export")
async def export_subject(
    who: Caller, request: Request, runtime: Rt, subject: str = Subject
) -> StreamingResponse:
    """Everything held about the subject, as JSON lines: each execution as history shows
    it, then every event of them. Recorded in the tenant's trail (`subject.exported`)."""
    who.require("tenant:admin")
    ref = subject_ref(who.tenant_id, subject)
    found = await runtime.read_models.subject_data(who.tenant_id, ref, True)
    lines = [{"kind": "execution", "data": row} for row in found["executions"]]
    lines += found["events"]
    mount = request.url.path[: request.url.path.index("/api/v1/subjects/")]  # Serve's prefix
    note_access(runtime, request, "subject.exported", who.tenant_id,
                {"subject_ref": ref, "lines": len(lines)}, who.actor,
                path=f"{mount}/api/v1/subjects/{ref}/export")  # fmt: skip (never the id)
    body = (json.dumps(line, default=str) + "\n" for line in lines)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.get("/subjects/{subject:path}")
async def list_subject(
    who: Caller, runtime: Rt, subject: str = Subject
) -> dict[str, Any]:
    """The subject's executions, newest first, with their input and answers (marked
    erased once the subject was erased or their retention expired)."""
    who.require("tenant:admin")
    ref = subject_ref(who.tenant_id, subject)
    found = await runtime.read_models.subject_data(who.tenant_id, ref, False)
    return {"subject_ref": ref, "executions": found["executions"]}


@router.delete("/subjects/{subject:path}")
async def erase_subject(who: Caller, runtime: Rt, subject: str = Subject) -> dict[str, Any]:
    """Erase the subject's payload by destroying its keys: prompts, answers and tool data
    become unreadable in every event, read model and backup; counts, tokens, cost and
    timings stay. Recorded in the tenant's trail (`subject.erased`)."""
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).erase_subject(subject, who.by)


@router.get("/retention")
async def get_retention(who: Caller, runtime: Rt) -> dict[str, Any]:
    """The tenant's retention (`null`: everything is kept)."""
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).get_retention()


@router.put("/retention")
async def set_retention(body: Retention, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Keep payloads `payload_days` days (and executions `metrics_days`, or forever); the
    hourly sweep removes what expired. Applies to executions started from now on."""
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).set_retention(body.model_dump(), who.by)


@router.delete("/retention")
async def remove_retention(who: Caller, runtime: Rt) -> dict[str, Any]:
    """Keep everything again (what was already swept stays gone)."""
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).set_retention(None, who.by)
