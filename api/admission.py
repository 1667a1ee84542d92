"""This replica's admission of executions: fair, bounded waiting for a slot (overload gives
503 with Retry-After), and refusals of a tenant over its request rate answered from memory.

A tenant actor's requests-per-minute refusal says when a request can next be admitted; until
then the replica refuses that tenant's executions itself, without a call to the actor, so a
tenant hammering past its limit costs the replica little and other tenants nothing.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from domain.admission import FairQueue, retry_after_s
from domain.catalog import IngressLimits
from domain.errors import CBError, Overloaded, RateLimited

SERVICE_EWMA = 0.1  # weight of the newest slot hold time in the running estimate
MAX_REMEMBERED = 10_000


class Gate:
    """Slots for executions in flight; the rest wait in a FairQueue, bounded."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.queue: FairQueue[asyncio.Future[None]] = FairQueue()
        self.service_s = 0.05  # running estimate of how long a slot is held

    def stats(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "queued": self.queue.size,
            "slot_hold_ms": round(self.service_s * 1000, 1),
        }

    @asynccontextmanager
    async def slot(self, tenant: str, limits: IngressLimits) -> AsyncIterator[None]:
        """Hold a slot for the block; wait for one in turn, or raise Overloaded."""
        if self.in_flight < limits.max_in_flight and not self.queue.size:
            self.in_flight += 1
        else:
            await self._wait(tenant, limits)
        started = time.monotonic()
        try:
            yield
        finally:
            held = time.monotonic() - started
            self.service_s += SERVICE_EWMA * (held - self.service_s)
            self.in_flight -= 1
            self._fill(limits)

    async def _wait(self, tenant: str, limits: IngressLimits) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wait = retry_after_s(self.queue.size, limits, self.service_s)
        self.queue.push(tenant, waiter, limits, wait)
        self._fill(limits)  # room may have been made (a raised limit)
        try:
            async with asyncio.timeout(limits.max_queue_wait_s):
                await waiter
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():  # granted as the wait ended
                self.in_flight -= 1
                self._fill(limits)
            else:
                self.queue.remove(tenant, waiter)
            if isinstance(exc, TimeoutError):
                raise Overloaded(
                    f"no capacity within {limits.max_queue_wait_s:g} s; retry later",
                    retry_after=retry_after_s(self.queue.size, limits, self.service_s),
                    details={"limit": "max_queue_wait_s"},
                ) from None
            raise

    def _fill(self, limits: IngressLimits) -> None:
        while self.in_flight < limits.max_in_flight:
            waiter = self.queue.pop()
            if waiter is None:
                return
            if not waiter.done():  # a cancelled waiter gives its turn away
                waiter.set_result(None)
                self.in_flight += 1


class Refusals:
    """Tenants refused for their request rate, and until when."""

    def __init__(self) -> None:
        self._until: dict[str, tuple[float, float, RateLimited]] = {}

    def check(self, tenant: str) -> None:
        """Raise the tenant's refusal again, with its figures brought up to now."""
        held = self._until.get(tenant)
        if held is None:
            return
        noted, until, err = held
        now = time.monotonic()
        if now >= until:
            del self._until[tenant]
            return
        details = dict(err.details) if isinstance(err.details, dict) else {}
        headers = dict(details.get("headers") or {})
        if "X-RateLimit-Reset" in headers:
            left = int(headers["X-RateLimit-Reset"]) - math.floor(now - noted)
            headers["X-RateLimit-Reset"] = str(max(0, left))
        headers["X-RateLimit-Remaining"] = "0"
        raise RateLimited(err.message, retry_after=until - now, details={**details,
                          "headers": headers})  # fmt: skip

    def note(self, tenant: str, err: CBError) -> None:
        """Remember a requests-per-minute refusal until its Retry-After."""
        limit = err.details.get("limit") if isinstance(err.details, dict) else None
        if not isinstance(err, RateLimited) or limit != "requests_per_minute":
            return  # concurrency and token refusals can clear before their estimate
        if not err.retry_after:
            return
        now = time.monotonic()
        if len(self._until) >= MAX_REMEMBERED:
            self._until = {t: h for t, h in self._until.items() if h[1] > now}
        self._until[tenant] = (now, now + err.retry_after, err)

    def forget(self, tenant: str) -> None:
        """The tenant's limits changed: ask its actor again."""
        self._until.pop(tenant, None)


gate = Gate()
refusals = Refusals()


@asynccontextmanager
async def admitted(tenant: str, limits: IngressLimits) -> AsyncIterator[None]:
    """An execution's way in: a remembered refusal, else a slot; refusals are remembered."""
    refusals.check(tenant)
    async with gate.slot(tenant, limits):
        try:
            yield
        except RateLimited as err:
            refusals.note(tenant, err)
            raise
