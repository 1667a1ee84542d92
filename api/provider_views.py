"""The configured providers as a tenant sees them: configuration, models and health."""

from __future__ import annotations

import datetime as dt
from typing import Any

from actors.settings import provider_base_url
from api.runtime import Runtime
from domain.config import Config
from domain.model_listing import provider_models
from domain.urls import shown_url


async def provider_views(runtime: Runtime, only: str | None = None) -> list[dict[str, Any]]:
    """The configured providers (or just `only`) with their models and health."""
    health = await runtime.provider_health(only)
    config = runtime.config()
    return [_view(config, name, state) for name, state in health.items()]


def _view(config: Config, name: str, health: dict[str, Any]) -> dict[str, Any]:
    spec = config.providers[name]
    view = {
        "id": name,
        "type": spec.type,
        "base_url": shown_url(provider_base_url(spec)),
        "models": provider_models(config, name),
        "health": _health(health),
    }
    if "endpoints" in health:  # several endpoints: each one's address, share and health
        seen = {h["endpoint"]: h for h in health["endpoints"]}
        view["balance"] = spec.balance
        view["endpoints"] = [
            {
                "id": e.key,
                "name": e.name,
                "base_url": shown_url(provider_base_url(e.spec)),
                "weight": e.weight,
                "health": _health(seen[e.name]),
            }
            for e in config.endpoints(name)
            if e.name in seen
        ]
    return view


def _health(health: dict[str, Any]) -> dict[str, Any]:
    last = health.get("last_check")
    return {
        "healthy": health["healthy"],
        "breaker": health["breaker"],
        "breaker_opened_because": health["breaker_opened_because"],
        "error_rate": health["error_rate"],
        "average_latency_ms": health["average_latency_ms"],
        "consecutive_failures": health["consecutive_failures"],
        "requests": health["requests"],
        "last_error": health["last_error"],
        "last_check": _iso(last) if last else None,
    }


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
