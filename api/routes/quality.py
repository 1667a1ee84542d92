"""Quality: feedback on executions, and the tenant's default judge (an agent's own is in
its definition, `judge`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Caller
from api.ids import UUID_PATTERN
from api.runtime import Rt
from domain.errors import NotFound
from domain.feedback import FeedbackRequest
from domain.judging import JudgeSpec

router = APIRouter(prefix="/api/v1", tags=["quality"])


@router.post("/executions/{execution_id}/feedback", status_code=201)
async def give_feedback(
    execution_id: str, body: FeedbackRequest, who: Caller, runtime: Rt
) -> dict[str, Any]:
    """Score an ended execution (several scores may be given); with the `executions:write`
    scope, or by the credential that started it. The comment is erased with the
    execution's data subject."""
    if not UUID_PATTERN.match(execution_id):
        raise NotFound(f"execution {execution_id} not found")
    may_write = "executions:write" in who.scopes
    feedback = body.model_dump()
    return await runtime.tenant(who.tenant_id).give_feedback(
        execution_id, feedback, who.by, who.actor, may_write
    )


@router.post("/executions/{execution_id}/judge")
async def judge_execution(
    execution_id: str, body: JudgeSpec, who: Caller, runtime: Rt
) -> dict[str, Any]:
    """Judge a completed execution now with this judge (its sample rate aside), off any
    client's path; the verdict is recorded on it as feedback from source `judge`. Answers
    `{"score", "reason", "judge"}` or `{"error", "judge"}` (`judge`: its runs and cost)."""
    who.require("executions:write")
    if not UUID_PATTERN.match(execution_id):
        raise NotFound(f"execution {execution_id} not found")
    return await runtime.tenant(who.tenant_id).judge_execution(execution_id, body.model_dump())


@router.get("/judge")
async def get_judge(who: Caller, runtime: Rt) -> dict[str, Any]:
    """The tenant's default judge (`null`: none)."""
    who.require("agents:read")
    return await runtime.tenant(who.tenant_id).get_judge()


@router.put("/judge")
async def set_judge(body: JudgeSpec, who: Caller, runtime: Rt) -> dict[str, Any]:
    """Judge a `sample_rate` share of the executions whose agent names no judge (chat
    completions included), after their answers were sent."""
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).set_judge(body.model_dump(), who.by)


@router.delete("/judge")
async def remove_judge(who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).set_judge(None, who.by)
