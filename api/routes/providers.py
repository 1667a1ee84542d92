"""LLM providers as a tenant sees them: configuration, models, health."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter

from actors.settings import provider_base_url
from api import runtime
from api.auth import Caller
from domain.catalog import Catalog
from domain.errors import NotFound
from domain.urls import shown_url

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])


@router.get("")
async def list_providers(who: Caller) -> dict[str, Any]:
    """Every configured provider with its models and health (breaker, error rate, latency)."""
    who.require("agents:read")
    return {"providers": await provider_views()}


@router.get("/{provider_id}")
async def get_provider(provider_id: str, who: Caller) -> dict[str, Any]:
    who.require("agents:read")
    found = await provider_views(provider_id)
    if not found:
        raise NotFound(f"provider {provider_id} is not configured")
    return found[0]


async def provider_views(only: str | None = None) -> list[dict[str, Any]]:
    """The configured providers (or just `only`) with their models and health."""
    health = await runtime.provider_health(only)
    catalog = runtime.catalog()
    return [_view(catalog, name, state) for name, state in health.items()]


def _view(catalog: Catalog, name: str, health: dict[str, Any]) -> dict[str, Any]:
    spec = catalog.providers[name]
    last = health.get("last_check")
    return {
        "id": name,
        "type": spec.type,
        "base_url": shown_url(provider_base_url(spec)),
        "models": [
            {
                "id": model_id,
                "provider_model": catalog.wire_model(model_id),
                "context_window": model.context_window,
                "max_output_tokens": model.max_output_tokens,
                "capabilities": sorted(model.capabilities),
                "input_price_per_mtok": model.input_price_per_mtok,
                "output_price_per_mtok": model.output_price_per_mtok,
            }
            for model_id, model in catalog.models.items()
            if model.provider == name
        ],
        "health": {
            "healthy": health["healthy"],
            "breaker": health["breaker"],
            "breaker_opened_because": health["breaker_opened_because"],
            "error_rate": health["error_rate"],
            "average_latency_ms": health["average_latency_ms"],
            "consecutive_failures": health["consecutive_failures"],
            "requests": health["requests"],
            "last_error": health["last_error"],
            "last_check": _iso(last) if last else None,
        },
    }


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
