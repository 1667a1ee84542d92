"""A tenant's audit trail (scope `tenant:admin`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api import runtime
from api.auth import Caller

router = APIRouter(tags=["audit"])


@router.get("/api/v1/audit")
async def audit_trail(
    who: Caller,
    kind: Annotated[list[str] | None, Query(description="only these kinds (repeatable)")] = None,
    since: Annotated[float | None, Query(description="unix seconds, inclusive")] = None,
    until: Annotated[float | None, Query(description="unix seconds, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Who did what, when and from where, newest first: changes and refusals."""
    who.require("tenant:admin")
    entries = await runtime.query("list_audit", who.tenant_id, kind or [], since, until, limit)
    return {"entries": entries}
