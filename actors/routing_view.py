"""A tenant actor's view of what routing depends on: the configuration, open breakers, and
per-model statistics.

Kept fresh while the tenant is executing, so resolving a model costs no actor call; after a
quiet spell the first use waits for one refresh. A provider endpoint's view (breaker, model
statistics) comes on a lease call to its actor when the one held is over half a second old,
and is asked for on its own only when none came for a second. The configuration is asked for
every `CONFIG_POLL_S`, and at once when the config actor says it changed. A lease refused
because a breaker is open marks the endpoint open at once; a provider counts as open when
every endpoint of it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from actors.replies import unwrap
from domain.routing import ModelStats

REFRESH_S = 1.0  # a provider view older than this is asked for on its own
CONFIG_POLL_S = 5.0  # the config actor also says when the configuration changed
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
        self.views: dict[str, dict[str, Any]] = {}  # each endpoint's last view
        self.viewed_at: dict[str, float] = {}
        self.config_at = 0.0
        self.last_used = 0.0
        self.refreshed_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._news: asyncio.Task[None] | None = None

    async def fresh(self) -> None:
        """Make sure the view is at most about a refresh interval old, and stays so a while."""
        self.last_used = time.monotonic()
        if self.last_used - self.refreshed_at > 2 * REFRESH_S:
            await self.refresh()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refresh_while_used())

    def wants_view(self, endpoint: str) -> bool:
        """Whether a lease call to the endpoint's actor should bring its view back."""
        return time.monotonic() - self.viewed_at.get(endpoint, 0.0) > REFRESH_S / 2

    def take_view(self, endpoint: str, view: dict[str, Any]) -> None:
        """Adopt an endpoint's view that came on a lease call."""
        self.views[endpoint], self.viewed_at[endpoint] = view, time.monotonic()
        self._fold()

    def mark_open(self, endpoint: str) -> None:
        """A lease was refused for an open breaker: open until the endpoint's next view."""
        self.views[endpoint] = {"models": {}, **self.views.get(endpoint, {}), "breaker": "open"}
        self._fold()

    def config_changed(self) -> None:
        """The config actor says a newer configuration exists: ask for it now, if the view is
        in use (an unused one asks at its next use anyway), so a change does not bring every
        quiet tenant's actor to the config actor at once."""
        if time.monotonic() - self.last_used >= ACTIVE_S:
            return
        if self._news is None or self._news.done():
            self._news = asyncio.get_running_loop().create_task(self._fetch_config())
            self._news.add_done_callback(_log_failure)

    async def refresh(self, stale_only: bool = False) -> None:
        """Ask the config actor for news, then every provider endpoint for its view; with
        `stale_only`, the config actor only every `CONFIG_POLL_S` and only the endpoints
        whose view is over `REFRESH_S` old."""
        now = time.monotonic()
        if not stale_only or now - self.config_at >= CONFIG_POLL_S:
            await self._fetch_config()  # it may change which endpoints there are
        keys = sorted(k for group in self.endpoints().values() for k in group)
        if stale_only:
            keys = [k for k in keys if now - self.viewed_at.get(k, 0.0) > REFRESH_S]
        views = await asyncio.gather(*map(self._provider_view, keys), return_exceptions=True)
        for key, view in zip(keys, views, strict=True):
            if isinstance(view, BaseException):  # keep what was last known of it
                log.warning("no routing view from provider %s: %r", key, view)
                continue
            self.views[key], self.viewed_at[key] = view, now
        self._fold()
        self.refreshed_at = time.monotonic()

    async def _fetch_config(self) -> None:
        asked = time.monotonic()
        snapshot = unwrap(await self.config_actor().snapshot.remote(self.config_version))
        self.config_at = asked
        if snapshot is not None:
            self.config_version = snapshot["version"]
            self.on_config(snapshot["data"])

    def _fold(self) -> None:
        """The open endpoints and providers, and each model's statistics over its endpoints."""
        grouped = self.endpoints()
        stats: dict[str, ModelStats] = {}
        for key in sorted(k for group in grouped.values() for k in group):
            for model, seen in self.views.get(key, {}).get("models", {}).items():
                stats[model] = _merged(stats.get(model), seen)
        opened = {key for key, view in self.views.items() if view["breaker"] == "open"}
        self.stats = stats
        self.open_endpoints = opened
        self.open = {p for p, keys in grouped.items() if keys and all(k in opened for k in keys)}

    async def _provider_view(self, provider: str) -> dict[str, Any]:
        return unwrap(await self.provider(provider).routing_view.remote())

    async def _refresh_while_used(self) -> None:
        while time.monotonic() - self.last_used < ACTIVE_S:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.refresh(stale_only=True)
            except Exception as exc:  # keep the last view; the next round tries again
                log.warning("routing view refresh failed: %r", exc)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("fetching the changed configuration failed: %r", task.exception())


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
