"""Names of a deployment's actors, and get-or-create by name. Imports no actor class.

Each actor module builds its own `handle(settings, …)` on `get_or_create`; whoever needs a
peer is given that handle (or a function returning it), so nothing here locates services.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.placement import singleton_options
from actors.settings import Settings

NAMESPACE = "circuitbreaker"

_handles: dict[str, Any] = {}
_unconfirmed: set[str] = set()  # handles got here that have not answered yet


def get_or_create(
    name: str,
    cls: Any,
    *args: Any,
    max_concurrency: int = 1000,
    placement: dict[str, Any] | None = None,
) -> Any:
    """The handle of the named detached actor, started with `cls(*args)` if none runs.

    `placement` is its Ray options for where it runs (`actors.placement`); by default, the
    head node's, as for every actor the cluster has one of.
    """
    handle = _handles.get(name)
    if handle is None:
        handle = cls.options(
            name=name,
            namespace=NAMESPACE,
            get_if_exists=True,
            lifetime="detached",
            max_concurrency=max_concurrency,
            num_cpus=0,
            **(singleton_options() if placement is None else placement),
        ).remote(*args)
        _handles[name] = handle
        _unconfirmed.add(name)
    return handle


def unconfirmed(name: str) -> bool:
    """Whether the cached handle of `name` has not yet been seen to answer (it may still wait
    for a node with room)."""
    return name in _unconfirmed


def confirm(name: str) -> None:
    """The actor of `name` answered: it was placed and runs."""
    _unconfirmed.discard(name)


def existing(name: str) -> Any | None:
    """The handle of the named actor if it runs now; never starts one."""
    handle = _handles.get(name)
    if handle is not None:
        return handle
    try:
        return ray.get_actor(name, namespace=NAMESPACE)
    except ValueError:
        return None


def forget(name: str) -> None:
    """Drop a cached handle (the actor died or was evicted); the next call recreates it."""
    _handles.pop(name, None)
    _unconfirmed.discard(name)


def tenant_actor_name(settings: Settings, tenant_id: str) -> str:
    return f"{settings.instance}:tenant:{tenant_id}"


def provider_actor_name(settings: Settings, provider: str) -> str:
    return f"{settings.instance}:provider:{provider}"


def config_actor_name(settings: Settings) -> str:
    return f"{settings.instance}:config"


def projection_actor_name(settings: Settings) -> str:
    return f"{settings.instance}:projection"


def metrics_actor_name(settings: Settings) -> str:
    return f"{settings.instance}:metrics"


def instance_actor_names(settings: Settings) -> list[str]:
    """Every live named actor of this deployment instance."""
    prefix = f"{settings.instance}:"
    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == NAMESPACE and a["name"].startswith(prefix)
    ]
