"""Finds or creates the named actors of one deployment instance."""

from __future__ import annotations

from typing import Any

import ray

from actors.settings import Settings

NAMESPACE = "circuitbreaker"

_handles: dict[str, Any] = {}


def _get_or_create(name: str, cls: Any, *args: Any, max_concurrency: int = 1000) -> Any:
    handle = _handles.get(name)
    if handle is None:
        handle = cls.options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            max_concurrency=max_concurrency,
            num_cpus=0,
        ).remote(*args)
        _handles[name] = handle
    return handle


def forget(name: str) -> None:
    """Drop a cached handle (the actor died or was evicted); the next call recreates it."""
    _handles.pop(name, None)


def tenant_actor_name(settings: Settings, tenant_id: str) -> str:
    return f"{settings.instance}:tenant:{tenant_id}"


def tenant_actor(settings: Settings, tenant_id: str) -> Any:
    from actors.tenant_actor import TenantActor

    name = tenant_actor_name(settings, tenant_id)
    return _get_or_create(name, TenantActor, settings, tenant_id)


def provider_actor_name(settings: Settings, provider: str) -> str:
    return f"{settings.instance}:provider:{provider}"


def provider_actor(settings: Settings, provider: str) -> Any:
    from actors.provider_actor import ProviderActor

    name = provider_actor_name(settings, provider)
    return _get_or_create(name, ProviderActor, settings, provider)


def config_actor_name(settings: Settings) -> str:
    return f"{settings.instance}:config"


def config_actor(settings: Settings) -> Any:
    from actors.config_actor import ConfigActor

    return _get_or_create(config_actor_name(settings), ConfigActor, settings)


def projection_actor_name(settings: Settings) -> str:
    return f"{settings.instance}:projection"


def projection_actor(settings: Settings) -> Any:
    from actors.projection_actor import ProjectionActor

    return _get_or_create(projection_actor_name(settings), ProjectionActor, settings)


def instance_actor_names(settings: Settings) -> list[str]:
    """Every live named actor of this deployment instance."""
    prefix = f"{settings.instance}:"
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and a["name"].startswith(prefix)
    ]
