"""A tenant's own export (the platform admin's is in `api.routes.admin`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.auth import Caller
from api.routes.admin import exported
from api.runtime import Rt

router = APIRouter(tags=["audit"])


@router.get("/api/v1/export")
async def export_own_data(who: Caller, request: Request, runtime: Rt) -> StreamingResponse:
    """Everything the platform holds about the caller's tenant, as JSON lines (as the
    platform admin's export); recorded in its trail with the credential that asked."""
    who.require("tenant:admin")
    return await exported(runtime, request, who.tenant_id, who.actor)
