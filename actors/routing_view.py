"""A tenant actor's view of what routing depends on: the configuration, open breakers, and
per-model statistics.

Refreshed from the config and provider actors about once a second while the tenant is
executing, so resolving a model costs no actor call; after a quiet spell the first use waits
for one refresh. A lease refused because a breaker is open marks the endpoint open at once; a
provider counts as open when every endpoint of it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actors.replies import unwrap
from domain.routing import ModelStats

REFRESH_S = 1.0
ACTIVE_S = 30.0  # stop refreshing after this long without use

log = logging.getLogger(__name__)


class RoutingView:
    """`config_actor()` and `provider(key)` give the peers' handles; `endpoints()` each
    provider's endpoint keys to ask; `on_config` takes each newer configuration."""

    def __init__(
        self,
        config_actor: Callable[[], Any],
        provider: Callable[[str], Any],
        endpoints: Callable[[], Mapping[str, Sequence[str]]],
        on_config: Callable[[dict[str, Any]], None],
    ) -> None:
        self.config_actor = config_actor
        self.provider = provider
        self.endpoints = endpoints
        self.on_config = on_config
        self.config_version: str | None = None
        self.open: set[str] = set()  # providers whose every endpoint's breaker is open
        self.open_endpoints: set[str] = set()
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

    def mark_open(self, endpoint: str) -> None:
        self._set_open(self.open_endpoints | {endpoint})

    def _set_open(self, endpoints: set[str]) -> None:
        self.open_endpoints = endpoints
        self.open = {
            provider
            for provider, keys in self.endpoints().items()
            if keys and all(k in endpoints for k in keys)
        }

    async def refresh(self) -> None:
        """Ask the config actor for news and every configured provider for its view, at once."""
        snapshot = unwrap(await self.config_actor().snapshot.remote(self.config_version))
        if snapshot is not None:
            self.config_version = snapshot["version"]
            self.on_config(snapshot["data"])
        keys = sorted(k for group in self.endpoints().values() for k in group)
        views = await asyncio.gather(
            *(self._provider_view(k) for k in keys), return_exceptions=True
        )
        opened: set[str] = set()
        stats: dict[str, ModelStats] = {}
        for key, view in zip(keys, views, strict=True):
            if isinstance(view, BaseException):
                log.warning("no routing view from provider %s: %r", key, view)
                if key in self.open_endpoints:
                    opened.add(key)
                continue
            if view["breaker"] == "open":
                opened.add(key)
            for model, seen in view["models"].items():
                stats[model] = _merged(stats.get(model), seen)
        self._set_open(opened)
        self.stats = stats
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


def _merged(known: ModelStats | None, seen: dict[str, Any]) -> ModelStats:
    """A model's statistics with one more endpoint's (weighted by their samples)."""
    fresh = ModelStats(
        latency_ms=seen["latency_ms"], error_rate=seen["error_rate"], samples=seen["samples"]
    )
    if known is None or not known.samples:
        return fresh
    if not fresh.samples:
        return known
    n = known.samples + fresh.samples
    return ModelStats(
        latency_ms=_weighted(known.latency_ms, known.samples, fresh.latency_ms, fresh.samples),
        error_rate=(known.error_rate * known.samples + fresh.error_rate * fresh.samples) / n,
        samples=n,
    )


def _weighted(a: float | None, na: int, b: float | None, nb: int) -> float | None:
    if a is None or b is None:
        return a if b is None else b
    return (a * na + b * nb) / (na + nb)
