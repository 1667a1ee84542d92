"""Names of a deployment's actors, and get-or-create by name. Imports no actor class.

Each actor module builds its own `handle(settings, …)` on `get_or_create`; whoever needs a
peer is given that handle (or a function returning it), so nothing here locates services.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import ray
from ray.exceptions import ActorDiedError

from actors.placement import singleton_options
from actors.settings import Settings

NAMESPACE = "circuitbreaker"

_handles: dict[str, Any] = {}
_unconfirmed: set[str] = set()  # handles got here that have not answered yet


def get_or_create(
    name: str,
    cls: Any,
    settings: Settings,
    *args: Any,
    max_concurrency: int = 1000,
    placement: dict[str, Any] | None = None,
    runtime_env: dict[str, Any] | None = None,
    started: Callable[[], None] | None = None,
) -> Any:
    """The handle of the named detached actor, started with `cls(settings, *args)` if none
    runs. Its calls are Ray task events only with `settings.ray_task_events`.

    `placement` is its Ray options for where it runs (`actors.placement`); by default, the
    head node's, as for every actor the cluster has one of. `started` is called when this
    call starts the actor (none of that name ran a moment before).
    """
    handle = _handles.get(name)
    if handle is None:
        if started is not None:
            try:
                handle = ray.get_actor(name, namespace=NAMESPACE)
            except ValueError:
                started()
        if handle is None:
            handle = cls.options(
                name=name,
                namespace=NAMESPACE,
                get_if_exists=True,
                lifetime="detached",
                max_concurrency=max_concurrency,
                num_cpus=0,
                enable_task_events=settings.ray_task_events,
                **({} if runtime_env is None else {"runtime_env": runtime_env}),
                **(singleton_options() if placement is None else placement),
            ).remote(settings, *args)
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


class Revivable:
    """A named singleton's handle that comes back after the actor's death: a call that finds
    it dead (`ActorDiedError`) starts it again by `start()` and is sent once more, when its
    result is awaited (a call that is not awaited is only sent). `generation` counts the
    restarts seen here, so a holder of the dead one's grants can tell they are void."""

    def __init__(self, name: str, start: Callable[[], Any]) -> None:
        self.name = name
        self.start = start
        self.generation = 0

    def __getattr__(self, method: str) -> _Method:
        return _Method(self, method)

    def died(self) -> None:
        forget(self.name)
        self.generation += 1


class _Method:
    def __init__(self, owner: Revivable, method: str) -> None:
        self.owner, self.method = owner, method

    def remote(self, *args: Any, **kwargs: Any) -> _Call:
        return _Call(self.owner, self.method, args, kwargs)


class _Call:
    def __init__(self, owner: Revivable, method: str, args: Any, kwargs: Any) -> None:
        self.owner, self.method, self.args, self.kwargs = owner, method, args, kwargs
        self.ref = self._send()

    def _send(self) -> Any:
        return getattr(self.owner.start(), self.method).remote(*self.args, **self.kwargs)

    def __await__(self) -> Generator[Any, None, Any]:
        return self._result().__await__()

    async def _result(self) -> Any:
        try:
            return await self.ref
        except ActorDiedError:
            self.owner.died()
            return await self._send()
