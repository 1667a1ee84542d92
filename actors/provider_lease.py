"""Provider permits leased in batches, so most attempts cost no actor round trip.

The provider actor stays the one authority over a provider's rate limit, concurrency and
breaker: it hands a tenant actor credits (each one request token plus one concurrency slot),
and the lease spends them locally. Outcomes and spent slots go back with the next lease call,
or in a batched, one-way `settle` call when none comes: every `FLUSH_S` while the provider
is short of slots, its breaker is not closed or an attempt failed, every `LAZY_FLUSH_S`
while it is `roomy` (breaker closed, at least half its slots free at the last lease: a spent
slot held a little longer only keeps the provider further under its limit). A lease asks
for a few spare credits while the provider is roomy (and for `ROOMY_WINDOWS` windows of recent
demand, so a tenant seeing a trickle leases every half second, not every few attempts), one
when it is not; credits left unused for a moment are returned so no tenant hoards capacity.
While the provider is roomy the next lease goes out before the credits run out (when a
quarter of the last window's demand is left), so a steady stream of attempts seldom waits
for a lease call.

If the provider actor died and was started again (`names.Revivable.generation` moved), the
grants of the dead one are void: the attempts still using them are not settled with the new
one, which never granted them (and returns sent to it name the incarnation they came from).

A lease call also brings the provider's routing view back when the tenant's `views` want it
(`RoutingView.wants_view`), so an active tenant seldom asks for it on its own.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

MAX_BATCH = 64
PREFETCH = 1
ROOMY_PREFETCH = 4  # spare credits asked for while the provider has room (see `roomy`)
DEMAND_WINDOW_S = 0.1  # a lease asks for at least the credits taken in the last window
ROOMY_WINDOWS = 5  # roomy: a lease asks for this many windows of that demand
FLUSH_S = 0.1
LAZY_FLUSH_S = 1.0
IDLE_RETURN_S = 1.0
REFILL_SHARE = 4  # roomy: lease ahead once credits fall to 1/REFILL_SHARE of recent demand


class Views(Protocol):
    """Where routing views brought by lease calls go (`actors.routing_view.RoutingView`)."""

    def wants_view(self, endpoint: str) -> bool: ...

    def take_view(self, endpoint: str, view: dict[str, Any]) -> None: ...


class ProviderLease:
    """One per provider endpoint in a tenant actor; `take` before an attempt, `done` after
    it. `key` names the endpoint to `views`, which take what lease calls bring back."""

    def __init__(self, provider: Any, key: str = "", views: Views | None = None) -> None:
        self.provider = provider
        self.key, self.views = key, views
        self.credits = 0
        self.waiting = 0
        self.outcomes: list[tuple[bool, float, str | None, float | None, str]] = []
        self.spent = 0
        self.last_take = time.monotonic()
        self.window_start, self.taken_in_window, self.recent_demand = self.last_take, 0, 0
        self._leasing: asyncio.Task[dict[str, Any]] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.in_use = 0  # credits taken and not yet done
        self.stale = 0  # of those, granted by a provider actor that has since died
        self.generation = getattr(provider, "generation", 0)
        self.incarnation: str | None = None  # of the provider actor that granted the credits
        self.roomy = False  # the last lease found the breaker closed, half the slots free
        self.flushed_at = time.monotonic()

    async def take(self, timeout_s: float) -> dict[str, Any] | None:
        """Spend one credit, leasing more if none is left; a refusal comes back as an error."""
        self.waiting += 1
        try:
            while self.credits == 0:
                reply = await asyncio.shield(self._start_lease(timeout_s))
                if "error" in reply:
                    return reply
        finally:
            self.waiting -= 1
        self.credits -= 1
        self.in_use += 1
        self.last_take = now = time.monotonic()
        if now - self.window_start >= DEMAND_WINDOW_S:
            fresh = now - self.window_start < 2 * DEMAND_WINDOW_S  # else demand lapsed
            self.recent_demand = self.taken_in_window if fresh else 0
            self.window_start, self.taken_in_window = now, 0
        self.taken_in_window += 1
        if self.roomy and self.credits <= max(1, self.recent_demand // REFILL_SHARE):
            self._start_lease(timeout_s)  # ahead: the attempt short of credits finds it
        return None

    def _start_lease(self, timeout_s: float) -> asyncio.Task[dict[str, Any]]:
        """The lease call in flight, else a new one; `take` awaits it when out of credits."""
        if self._leasing is None or self._leasing.done():
            self._leasing = asyncio.create_task(self._lease(self._want(), timeout_s))
            self._leasing.add_done_callback(_seen)
        return self._leasing

    def _want(self) -> int:
        """Credits to lease (each lease is a Ray call): those waiting and a spare or a few,
        or what the last window took if more (what `ROOMY_WINDOWS` take, while roomy)."""
        if self.roomy:
            spare, demand = ROOMY_PREFETCH, self.recent_demand * ROOMY_WINDOWS
        else:
            spare, demand = PREFETCH, self.recent_demand
        return min(MAX_BATCH, max(self.waiting + spare, demand))

    async def _lease(self, want: int, timeout_s: float) -> dict[str, Any]:
        """Lease credits, sending back what was spent since the last settle."""
        returned, outcomes = self.spent, self.outcomes
        self.spent, self.outcomes = 0, []
        view = self.views is not None and self.views.wants_view(self.key)
        try:
            reply = await self.provider.lease.remote(
                want, timeout_s, returned, outcomes, self.incarnation, view
            )
        except BaseException:
            self.spent, self.outcomes = self.spent + returned, outcomes + self.outcomes
            raise
        self.flushed_at = time.monotonic()
        generation = getattr(self.provider, "generation", 0)
        if generation != self.generation:  # the actor died: what it granted is void
            self.generation, self.stale, self.spent = generation, self.in_use, 0
        granted = reply.get("value")
        if granted is not None:
            self.credits += granted["credits"]
            self.incarnation = granted["incarnation"]
            self.roomy = granted["roomy"]
            if "view" in granted and self.views is not None:
                self.views.take_view(self.key, granted["view"])
        self._ensure_flusher()
        return reply

    def done(
        self,
        ok: bool,
        latency_ms: float,
        error_type: str | None,
        retry_after: float | None,
        model: str,
    ) -> None:
        """Report an attempt's outcome; its slot goes back with the next batched settle."""
        self.outcomes.append((ok, latency_ms, error_type, retry_after, model))
        self.in_use -= 1
        if self.stale:
            self.stale -= 1  # the dead actor's grant: nothing to give back
        else:
            self.spent += 1
        if not ok:  # give back spare credits: the next attempt asks the breaker afresh
            self.spent += self.credits
            self.credits = 0
            self.roomy = False  # and the breaker hears of it within FLUSH_S
        self._ensure_flusher()

    def _ensure_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())

    async def _flush_loop(self) -> None:
        while self.outcomes or self.credits or self.spent:
            await asyncio.sleep(FLUSH_S)
            now = time.monotonic()
            idle = now - self.last_take > IDLE_RETURN_S and not self.waiting
            due = idle or now - self.flushed_at >= (LAZY_FLUSH_S if self.roomy else FLUSH_S)
            returned = self.spent + (self.credits if idle else 0)
            if due and (returned or self.outcomes):
                if idle:
                    self.credits = 0
                outcomes, self.outcomes, self.spent = self.outcomes, [], 0
                self.flushed_at = now
                self.provider.settle.remote(returned, outcomes, self.incarnation)


def _seen(task: asyncio.Task[dict[str, Any]]) -> None:
    """A lease nobody awaited (one ahead) that failed is seen here; the next attempt short of
    credits leases anew."""
    if not task.cancelled():
        task.exception()
