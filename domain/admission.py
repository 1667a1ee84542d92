"""Fair admission at an ingress replica: a bounded queue served round-robin among tenants.

A replica runs at most `max_in_flight` executions, fewer while it is short of CPU: an
AdaptiveLimit lowers the number when the replica's event loop lags and raises it again
when the loop keeps up and demand presses on the limit. The rest wait in one queue per tenant,
and a freed slot goes to the next tenant in turn, so a tenant with a thousand waiting
requests delays another tenant's one by a single turn, not a thousand. The queue is
bounded in total and per tenant; past either bound a request is refused at once.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Generic, TypeVar

from domain.config import IngressLimits
from domain.errors import Overloaded

T = TypeVar("T")
MAX_RETRY_AFTER_S = 30.0


class FairQueue(Generic[T]):
    """Waiting items per tenant; `pop` takes from each waiting tenant in turn."""

    def __init__(self) -> None:
        self._waiting: dict[str, deque[T]] = {}
        self._turns: deque[str] = deque()
        self.size = 0

    def waiting(self, tenant: str) -> int:
        return len(self._waiting.get(tenant, ()))

    def push(self, tenant: str, item: T, limits: IngressLimits, retry_after: float) -> None:
        """Queue `item`, or raise Overloaded naming the bound that is full."""
        if self.size >= limits.max_queued:
            raise Overloaded(
                "the service is at capacity; retry later",
                retry_after=retry_after,
                details={"limit": "max_queued", "queued": self.size},
            )
        if self.waiting(tenant) >= limits.max_queued_per_tenant:
            raise Overloaded(
                f"this tenant already has {self.waiting(tenant)} executions waiting; retry later",
                retry_after=retry_after,
                details={"limit": "max_queued_per_tenant", "queued": self.waiting(tenant)},
            )
        if tenant not in self._waiting:
            self._waiting[tenant] = deque()
            self._turns.append(tenant)
        self._waiting[tenant].append(item)
        self.size += 1

    def pop(self) -> T | None:
        """The first item of the tenant whose turn it is (None when nothing waits)."""
        if not self._turns:
            return None
        tenant = self._turns.popleft()
        items = self._waiting[tenant]
        item = items.popleft()
        self.size -= 1
        if items:
            self._turns.append(tenant)
        else:
            del self._waiting[tenant]
        return item

    def remove(self, tenant: str, item: T) -> bool:
        """Take out an item that stopped waiting (its wait ran out, its client left)."""
        items = self._waiting.get(tenant)
        if items is None or item not in items:
            return False
        items.remove(item)
        self.size -= 1
        if not items:
            del self._waiting[tenant]
            self._turns.remove(tenant)
        return True


def retry_after_s(queued: int, slots: int, service_s: float) -> float:
    """When a refused request may find room: the queue drained through `slots` at the
    observed pace."""
    estimate = (queued + 1) * service_s / max(1, slots)
    return min(MAX_RETRY_AFTER_S, max(1.0, math.ceil(estimate)))


class AdaptiveLimit:
    """How many executions to run at once, from the event loop's lag (AIMD-like).

    Over the target lag the limit drops to 80 % of what was in flight; well under it, with
    the limit in use, it grows by 10 % plus one. It stays within [floor, ceiling]; the
    replica updates it at every sample of its loop (about every 50 ms).
    """

    DECREASE = 0.8
    INCREASE = 1.1

    def __init__(self, ceiling: int) -> None:
        self.limit = float(ceiling)

    def update(self, lag_s: float, in_flight: int, limits: IngressLimits) -> int:
        """One observation: the loop's lag and how many ran; the limit now."""
        ceiling = limits.max_in_flight
        floor = min(limits.min_in_flight, ceiling)
        target = limits.target_loop_lag_ms / 1000
        if not target:
            self.limit = float(ceiling)
        elif lag_s > target:
            self.limit = min(self.limit, max(in_flight, floor)) * self.DECREASE
        elif lag_s < target / 2 and in_flight >= int(self.limit) - 1:
            self.limit = self.limit * self.INCREASE + 1
        self.limit = float(min(ceiling, max(floor, self.limit)))
        return int(self.limit)
