"""Per-replica runtime: settings and actor calls, configured once by the Serve deployment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from ray.exceptions import ActorDiedError, ActorUnavailableError

from actors import registry
from actors.replies import unwrap
from actors.settings import Settings, configured_providers

_settings: Settings | None = None
RECREATE_ATTEMPTS = 20


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def settings() -> Settings:
    if _settings is None:
        configure(Settings.from_env())
    assert _settings is not None
    return _settings


async def _call(name: str, handle_of: Callable[[], Any], method: str, *args: Any) -> Any:
    """Call an actor method; if the actor was evicted or died, recreate it and call again.

    Only a call that never reached a live actor is repeated: a dead actor ran nothing of it.
    """
    for attempt in range(RECREATE_ATTEMPTS):
        try:
            return await getattr(handle_of(), method).remote(*args)
        except (ActorDiedError, ActorUnavailableError):
            if attempt == RECREATE_ATTEMPTS - 1:
                raise
            registry.forget(name)
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


async def call_tenant(tenant_id: str, method: str, *args: Any) -> Any:
    """Call a tenant actor method and unwrap its reply (errors raise as CBError)."""
    name = registry.tenant_actor_name(settings(), tenant_id)
    reply = await _call(name, lambda: registry.tenant_actor(settings(), tenant_id), method, *args)
    return unwrap(reply)


async def query(method: str, *args: Any) -> Any:
    """Ask the projection actor (the read models) a question."""
    name = registry.projection_actor_name(settings())
    return await _call(name, lambda: registry.projection_actor(settings()), method, *args)


def warm_up() -> None:
    """Start the shared actors now, so the first request does not wait for their processes."""
    current = settings()
    registry.projection_actor(current)
    for provider in configured_providers(current.load_catalog()):
        registry.provider_actor(current, provider)


async def ready() -> None:
    """Raises unless the store and the projection actor answer within five seconds."""
    await asyncio.wait_for(query("ping"), timeout=5)
