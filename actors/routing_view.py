"""A tenant actor's view of what routing depends on: the configuration, open breakers, and
per-model statistics.

Refreshed from the config and provider actors about once a second while the tenant is
executing, so resolving a model costs no actor call; after a quiet spell the first use waits
for one refresh. A lease refused because a breaker is open marks the provider open at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from actors.replies import unwrap
from domain.routing import ModelStats

REFRESH_S = 1.0
ACTIVE_S = 30.0  # stop refreshing after this long without use

log = logging.getLogger(__name__)


class RoutingView:
    """`config_actor()` and `provider(name)` give the peers' handles; `providers()` the
    names to ask; `on_config` takes each newer configuration."""

    def __init__(
        self,
        config_actor: Callable[[], Any],
        provider: Callable[[str], Any],
        providers: Callable[[], list[str]],
        on_config: Callable[[dict[str, Any]], None],
    ) -> None:
        self.config_actor = config_actor
        self.provider = provider
        self.providers = providers
        self.on_config = on_config
        self.config_version: str | None = None
        self.open: set[str] = set()
        self.stats: dict[str, ModelStats] = {}
        self.last_used = 0.0
        self.refreshed_at = 0.0
        self._task: asyncio.Task[None] | None = None

    async def fresh(self) -> None:
        """Make sure the view is at most about a refresh interval old, and stays so a while."""
        self.last_used = time.monotonic()
        if self.last_used - self.refreshed_at > 2 * REFRESH_S:
            await self.refresh()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_while_used())

    def mark_open(self, provider: str) -> None:
        self.open = self.open | {provider}

    async def refresh(self) -> None:
        """Ask the config actor for news and every configured provider for its view, at once."""
        snapshot = unwrap(await self.config_actor().snapshot.remote(self.config_version))
        if snapshot is not None:
            self.config_version = snapshot["version"]
            self.on_config(snapshot["data"])
        providers = self.providers()
        views = await asyncio.gather(
            *(self._provider_view(p) for p in providers), return_exceptions=True
        )
        opened: set[str] = set()
        stats: dict[str, ModelStats] = {}
        for provider, view in zip(providers, views, strict=True):
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
        self.refreshed_at = time.monotonic()

    async def _provider_view(self, provider: str) -> dict[str, Any]:
        return unwrap(await self.provider(provider).routing_view.remote())

    async def _refresh_while_used(self) -> None:
        while time.monotonic() - self.last_used < ACTIVE_S:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh()
            except Exception as exc:  # keep the last view; the next round tries again
                log.warning("routing view refresh failed: %r", exc)
