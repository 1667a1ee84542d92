"""LLM providers as a tenant sees them: configuration, models, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Caller
from api.provider_views import provider_views
from api.runtime import Rt
from domain.errors import NotFound

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])


@router.get("")
async def list_providers(who: Caller, runtime: Rt) -> dict[str, Any]:
    """Every configured provider with its models and health (breaker, error rate, latency)."""
    who.require("agents:read")
    return {"providers": await provider_views(runtime)}


@router.get("/{provider_id}")
async def get_provider(provider_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:read")
    found = await provider_views(runtime, provider_id)
    if not found:
        raise NotFound(f"provider {provider_id} is not configured")
    return found[0]
