"""Per-replica runtime: settings and actor calls, configured once by the Serve deployment."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import registry
from actors.config_actor import current_config
from actors.replies import unwrap
from actors.settings import Settings, configured_providers
from api.admission import admitted
from api.streaming import open_stream
from domain.catalog import Catalog, parse_catalog

_settings: Settings | None = None
_catalog: Catalog | None = None
_config_version: str | None = None
_config_checked = 0.0
_config_refresh: asyncio.Task[None] | None = None
CONFIG_REFRESH_S = 2.0
RECREATE_ATTEMPTS = 20


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def catalog() -> Catalog:
    """The effective configuration as this replica last heard it from the config actor.

    Read from the file at first; checked for news in the background at most every
    `CONFIG_REFRESH_S`, so a change made on any replica reaches this one within seconds.
    """
    global _catalog, _config_checked, _config_refresh
    if _catalog is None:
        _catalog = settings().load_catalog()
    now = time.monotonic()
    if now - _config_checked > CONFIG_REFRESH_S:
        _config_checked = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return _catalog
        if _config_refresh is None or _config_refresh.done():
            _config_refresh = loop.create_task(refresh_catalog())
    return _catalog


async def refresh_catalog() -> Catalog:
    """Ask the config actor for a newer configuration now; the current one either way."""
    global _catalog, _config_version
    snapshot = await registry.config_actor(settings()).snapshot.remote(_config_version)
    if snapshot is not None:
        _catalog = parse_catalog(snapshot["data"])
        _config_version = snapshot["version"]
    return catalog()


def config_version() -> str | None:
    """The configuration version this replica serves (None: the file, not yet confirmed)."""
    catalog()
    return _config_version


async def call_config(method: str, *args: Any, changes: bool = True) -> Any:
    """Call a ConfigActor method and unwrap its reply; a change is visible here at once."""
    name = registry.config_actor_name(settings())
    handle_of = lambda: registry.config_actor(settings())  # noqa: E731
    reply = unwrap(await _call(name, handle_of, lambda h, _: getattr(h, method).remote(*args)))
    if changes:
        await refresh_catalog()
    return reply


def settings() -> Settings:
    if _settings is None:
        configure(Settings.from_env())
    assert _settings is not None
    return _settings


async def _call(
    name: str, handle_of: Callable[[], Any], invoke: Callable[[Any, int], Awaitable[Any]]
) -> Any:
    """Invoke an actor; if it was evicted or died, recreate it and invoke again.

    `invoke(handle, attempt)` is told which attempt it is, so a call that may already have
    run once (an execution) can ask the new actor to check the store instead of rerunning.
    """
    for attempt in range(RECREATE_ATTEMPTS):
        try:
            return await invoke(handle_of(), attempt)
        except (ActorDiedError, ActorUnavailableError):
            if attempt == RECREATE_ATTEMPTS - 1:
                raise
            registry.forget(name)
            await asyncio.sleep(0.1)
    raise AssertionError("unreachable")


def _tenant(tenant_id: str) -> tuple[str, Callable[[], Any]]:
    name = registry.tenant_actor_name(settings(), tenant_id)
    return name, lambda: registry.tenant_actor(settings(), tenant_id)


async def call_tenant(tenant_id: str, method: str, *args: Any) -> Any:
    """Call an idempotent-on-failure tenant actor method and unwrap its reply."""
    name, handle_of = _tenant(tenant_id)
    reply = await _call(name, handle_of, lambda h, _: getattr(h, method).remote(*args))
    return unwrap(reply)


async def stop_tenant(tenant_id: str) -> None:
    """Stop the tenant's actor if it runs (its sessions and processes end with it)."""
    name = registry.tenant_actor_name(settings(), tenant_id)
    try:
        handle = ray.get_actor(name, namespace=registry.NAMESPACE)
    except ValueError:  # not running
        return
    try:
        await handle.stop.remote()
    except RayActorError:  # it exited, as asked
        pass
    registry.forget(name)


async def execute(tenant_id: str, agent_id: str, request: dict[str, Any]) -> dict[str, Any]:
    """Run an execution; its id is fixed here so a retried call never runs it twice."""
    execution_id = str(uuid.uuid4())
    name, handle_of = _tenant(tenant_id)

    def invoke(handle: Any, attempt: int) -> Awaitable[Any]:
        return handle.execute.remote(agent_id, request, execution_id, attempt > 0)

    async with admitted(tenant_id, catalog().ingress):
        return unwrap(await _call(name, handle_of, invoke))


async def execute_stream(
    tenant_id: str, agent_id: str, request: dict[str, Any], cancel_on_disconnect: bool
) -> Any:
    """Start a streamed execution; where to read it (a refusal raises here). The stream
    holds an ingress slot until it has started."""
    execution_id = str(uuid.uuid4())
    name, handle_of = _tenant(tenant_id)

    def invoke(handle: Any, attempt: int) -> Awaitable[Any]:
        return handle.execute_stream.remote(
            agent_id, request, execution_id, cancel_on_disconnect, attempt > 0
        )

    async with admitted(tenant_id, catalog().ingress):
        return await open_stream(unwrap(await _call(name, handle_of, invoke)))


async def resume_stream(tenant_id: str, execution_id: str, after: int) -> Any:
    """Join a streamed execution after event `after`; where to read it."""
    name, handle_of = _tenant(tenant_id)
    reply = await _call(name, handle_of, lambda h, _: h.resume_stream.remote(execution_id, after))
    return await open_stream(unwrap(reply))


async def live_state(tenant_id: str, execution_id: str) -> dict[str, Any] | None:
    """Content and usage so far of a running streamed execution, from its tenant actor."""
    name, handle_of = _tenant(tenant_id)
    return await _call(name, handle_of, lambda h, _: h.live_state.remote(execution_id))


async def query(method: str, *args: Any) -> Any:
    """Ask the projection actor (the read models) a question."""
    name = registry.projection_actor_name(settings())
    handle_of = lambda: registry.projection_actor(settings())  # noqa: E731
    return await _call(name, handle_of, lambda h, _: getattr(h, method).remote(*args))


async def provider_health(only: str | None = None) -> dict[str, dict[str, Any]]:
    """Each configured provider's health (or just `only`'s), from its provider actor."""
    current = settings()
    names = sorted(n for n in configured_providers(catalog()) if only in (None, n))

    async def one(name: str) -> dict[str, Any]:
        actor_name = registry.provider_actor_name(current, name)
        handle_of = lambda: registry.provider_actor(current, name)  # noqa: E731
        return await _call(actor_name, handle_of, lambda h, _: h.health.remote())

    return dict(zip(names, await asyncio.gather(*(one(n) for n in names)), strict=True))


def warm_up() -> None:
    """Start the shared actors now, so the first request does not wait for their processes."""
    global _catalog, _config_version
    current = settings()
    registry.projection_actor(current)
    snapshot = current_config(current)
    _catalog, _config_version = parse_catalog(snapshot["data"]), snapshot["version"]
    for provider in configured_providers(catalog()):
        registry.provider_actor(current, provider)


async def ready() -> None:
    """Raises unless the store and the projection actor answer within five seconds."""
    await asyncio.wait_for(query("ping"), timeout=5)
