"""The tenant's response cache: forget it all (entries also expire by TTL, and a new agent
version is a new key)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Caller
from api.runtime import Rt

router = APIRouter(prefix="/api/v1/cache", tags=["cache"])


@router.delete("")
async def clear_cache(who: Caller, runtime: Rt) -> dict[str, Any]:
    """Delete every cached answer of the caller's tenant; how many there were."""
    who.require("agents:write")
    return {"deleted": await runtime.tenant(who.tenant_id).clear_cache(who.by)}
