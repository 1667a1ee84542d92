"""A tenant actor's view of provider health for routing: open breakers, per-model statistics.

Refreshed from the provider actors about once a second while the tenant is executing, so
resolving a model costs no actor call. A lease refused because a breaker is open marks the
provider open at once, before the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection

from actors import registry
from actors.settings import Settings
from domain.routing import ModelStats

REFRESH_S = 1.0
ACTIVE_S = 30.0  # stop refreshing after this long without a resolution

log = logging.getLogger(__name__)


class RoutingView:
    def __init__(self, settings: Settings, providers: Collection[str]) -> None:
        self.settings = settings
        self.providers = sorted(providers)
        self.open: set[str] = set()
        self.stats: dict[str, ModelStats] = {}
        self.last_used = 0.0
        self._task: asyncio.Task[None] | None = None

    def current(self) -> tuple[set[str], dict[str, ModelStats]]:
        """Open providers and model statistics as last seen; keeps the refresher running."""
        self.last_used = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_while_used())
        return self.open, self.stats

    def mark_open(self, provider: str) -> None:
        self.open = self.open | {provider}

    async def refresh(self) -> None:
        """Ask every configured provider actor for its routing view, at once."""
        views = await asyncio.gather(
            *(
                registry.provider_actor(self.settings, p).routing_view.remote()
                for p in self.providers
            ),
            return_exceptions=True,
        )
        opened: set[str] = set()
        stats: dict[str, ModelStats] = {}
        for provider, view in zip(self.providers, views, strict=True):
            if isinstance(view, BaseException):
                log.warning("no routing view from provider %s: %r", provider, view)
                if provider in self.open:
                    opened.add(provider)
                continue
            if view["breaker"] == "open":
                opened.add(provider)
            for model, seen in view["models"].items():
                stats[model] = ModelStats(
                    latency_ms=seen["latency_ms"],
                    error_rate=seen["error_rate"],
                    samples=seen["samples"],
                )
        self.open, self.stats = opened, stats

    async def _refresh_while_used(self) -> None:
        while time.monotonic() - self.last_used < ACTIVE_S:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)
