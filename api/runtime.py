"""One ingress replica's runtime: its settings, its cache of the configuration, and typed
clients of the actors. The Serve deployment makes one and puts it on `app.state.runtime`;
routes reach it through the `Rt` dependency, GraphQL resolvers through their context.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import Depends, Request

from actors import metrics, tracing
from actors.config_actor import current_config
from actors.settings import Settings, configured_endpoints
from api.clients import (
    Actors,
    CallLines,
    ConfigClient,
    KeyDirectory,
    ProviderClient,
    ReadModels,
    TenantClient,
)
from api.security_log import SecurityLog
from domain.config import Config, parse_config
from domain.provider_health import combined_health

CONFIG_REFRESH_S = 2.0
READY_TIMEOUT_S = 5.0


class Runtime:
    """Settings, the effective configuration as this replica last heard it, and the actors.

    `actors` says how to reach them: Ray's named actors of the deployment unless given.
    """

    def __init__(self, settings: Settings, actors: Actors | None = None) -> None:
        self.settings = settings
        self.actors = actors if actors is not None else Actors(settings)
        if actors is None:  # a replica of a Ray deployment: its metrics go to the cluster's
            metrics.start(settings, "ingress")
        tracing.setup(settings, "ingress")  # only with OTEL_EXPORTER_OTLP_ENDPOINT set
        # executions go to tenant actors on call lines in a Ray deployment (not over fakes)
        self.lines = CallLines() if actors is None else None
        self.config_actor = ConfigClient(self.actors.config_actor(), on_change=self.refresh_config)
        self.read_models = ReadModels(self.actors.projection())
        self.keys = KeyDirectory(self.read_models, follow=actors is None)
        self.security_log = SecurityLog(self.read_models.record_security)
        self._catalog: Config | None = None
        self._config_version: str | None = None
        self._config_checked = 0.0
        self._config_refresh: asyncio.Task[Config] | None = None

    def tenant(self, tenant_id: str) -> TenantClient:
        """The client of the tenant's actor (started on first use)."""
        return TenantClient(self.actors.tenant(tenant_id), self.lines)

    def provider(self, name: str) -> ProviderClient:
        """The client of the provider's actor (started on first use)."""
        return ProviderClient(self.actors.provider(name))

    def config(self) -> Config:
        """The effective configuration as this replica last heard it from the config actor.

        Read from the file at first; checked for news in the background at most every
        `CONFIG_REFRESH_S`, so a change made on any replica reaches this one within seconds.
        """
        if self._catalog is None:
            self._catalog = self.settings.load_config()
        now = time.monotonic()
        if now - self._config_checked > CONFIG_REFRESH_S:
            self._config_checked = now
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return self._catalog
            if self._config_refresh is None or self._config_refresh.done():
                self._config_refresh = loop.create_task(self.refresh_config())
        return self._catalog

    async def refresh_config(self) -> Config:
        """Ask the config actor for a newer configuration now; the current one either way."""
        self._adopt(await self.config_actor.snapshot(self._config_version))
        return self.config()

    def config_version(self) -> str | None:
        """The configuration version this replica serves (None: the file, not yet confirmed)."""
        self.config()
        return self._config_version

    def _adopt(self, snapshot: dict[str, Any] | None) -> None:
        if snapshot is not None:
            self._catalog = parse_config(snapshot["data"])
            self._config_version = snapshot["version"]

    async def provider_health(self, only: str | None = None) -> dict[str, dict[str, Any]]:
        """Each configured provider's health (or just `only`'s), from its endpoints' actors;
        a provider with several endpoints has them under `endpoints`, and their sum."""
        endpoints = [e for e in configured_endpoints(self.config()) if only in (None, e.provider)]
        health = await asyncio.gather(*(self.provider(e.key).health() for e in endpoints))
        grouped: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        single: dict[str, dict[str, Any]] = {}
        for endpoint, seen in zip(endpoints, health, strict=True):
            if endpoint.name is None:
                single[endpoint.provider] = seen
            else:
                grouped.setdefault(endpoint.provider, []).append((endpoint.name, seen))
        found = single | {p: combined_health(each) for p, each in grouped.items()}
        return dict(sorted(found.items()))

    def warm_up(self) -> None:
        """Start the shared actors now, so the first request does not wait for their processes;
        take the configuration from the config actor (blocking: for the deployment's init)."""
        self.actors.projection().handle_of()
        self._adopt(current_config(self.settings))
        for endpoint in configured_endpoints(self.config()):
            # its first call reads the configuration and starts any active probes
            self.actors.provider(endpoint.key).handle_of().start.remote()

    async def ready(self) -> None:
        """Raises unless the store and the projection actor answer within five seconds."""
        await asyncio.wait_for(self.read_models.ping(), timeout=READY_TIMEOUT_S)


def runtime_of(request: Request) -> Runtime:
    """The runtime of the app serving `request` (kept on `app.state.runtime`)."""
    return request.app.state.runtime


async def _runtime_dependency(request: Request) -> Runtime:
    """`runtime_of` as a dependency; async, because FastAPI runs a plain-function
    dependency in a worker thread, on every request (measured: ~20 % of a replica's CPU)."""
    return runtime_of(request)


Rt = Annotated[Runtime, Depends(_runtime_dependency)]
