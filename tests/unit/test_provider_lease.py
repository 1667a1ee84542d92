"""Leased provider credits: one actor call serves many attempts; everything is settled back."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import provider_lease
from actors.provider_lease import ProviderLease
from tests.unit.fakes import Method


class FakeProvider:
    """Stands in for the ProviderActor handle: same method names, counts its calls."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.outstanding = 0
        self.lease_calls = 0
        self.settled: list[tuple[int, list[Any]]] = []
        self.lease = Method(self._lease)
        self.settle = Method(self._settle)

    async def _lease(self, want: int, timeout_s: float) -> dict[str, Any]:
        self.lease_calls += 1
        granted = min(want, self.capacity - self.outstanding)
        if granted == 0:
            return {"error": {"type": "provider_rate_limited", "message": "full"}}
        self.outstanding += granted
        return {"value": granted}  # the reply convention: actors.replies

    def _settle(self, returned: int, outcomes: list[Any]) -> None:
        self.outstanding -= returned
        self.settled.append((returned, outcomes))


async def test_concurrent_attempts_share_one_lease_call_and_settle_every_slot() -> None:
    provider = FakeProvider(capacity=100)
    lease = ProviderLease(provider)

    async def attempt(i: int) -> None:
        assert await lease.take(1.0) is None
        await asyncio.sleep(0.001)
        lease.done(i % 2 == 0, 1.0, None if i % 2 == 0 else "provider_error", None, "m")

    await asyncio.gather(*(attempt(i) for i in range(12)))
    assert provider.lease_calls <= 2  # 12 attempts, not 12 round trips
    await asyncio.sleep(provider_lease.FLUSH_S * 5)
    outcomes = [o for _, batch in provider.settled for o in batch]
    assert len(outcomes) == 12
    assert sum(ok for ok, *_ in outcomes) == 6


async def test_unused_credits_go_back_after_idling(monkeypatch: Any) -> None:
    monkeypatch.setattr(provider_lease, "IDLE_RETURN_S", 0.05)
    provider = FakeProvider(capacity=100)
    lease = ProviderLease(provider)
    assert await lease.take(1.0) is None  # leases 2 (one prefetched)
    lease.done(True, 1.0, None, None, "m")
    await asyncio.sleep(0.3)
    assert provider.outstanding == 0 and lease.credits == 0


async def test_a_refusal_is_returned_not_raised() -> None:
    provider = FakeProvider(capacity=0)
    refusal = await ProviderLease(provider).take(0.1)
    assert refusal is not None and refusal["error"]["type"] == "provider_rate_limited"


async def test_a_steady_stream_of_attempts_leases_by_recent_demand() -> None:
    provider = FakeProvider(capacity=1000)
    lease = ProviderLease(provider)

    async def attempt() -> None:  # one at a time: a waiting count alone would lease 2 a call
        assert await lease.take(1.0) is None
        lease.done(True, 1.0, None, None, "m")

    for _ in range(150):  # the first window's demand is learnt one lease of 2 at a time
        await attempt()
        await asyncio.sleep(0.001)
    assert lease.recent_demand > 10
    before = provider.lease_calls
    for _ in range(150):
        await attempt()
        await asyncio.sleep(0.001)
    assert provider.lease_calls - before <= 150 / 10  # a lease per window, not per 2 attempts


async def test_after_the_provider_actor_restarts_its_dead_grants_are_not_settled() -> None:
    """Attempts in flight when the provider actor died hold its grants: the new actor never
    gave them, so they are not returned to it (its slots stay exact), only their outcomes."""
    provider = FakeProvider(capacity=100)
    provider.generation = 0  # type: ignore[attr-defined]  # as names.Revivable has it
    lease = ProviderLease(provider)
    assert await lease.take(1.0) is None
    assert await lease.take(1.0) is None  # two attempts in flight on the first actor's grants
    lease.credits = 0  # spent: the next take leases
    # the actor dies and comes back empty
    provider.generation = 1  # type: ignore[attr-defined]
    provider.outstanding = 0
    assert await lease.take(1.0) is None  # leased from the new actor
    new_grants = provider.outstanding
    for _ in range(3):
        lease.done(True, 1.0, None, None, "m")
    await asyncio.sleep(provider_lease.FLUSH_S * 3)
    returned = sum(r for r, _ in provider.settled)
    assert returned == 1  # only the new actor's own grant came back, not the two dead ones
    assert provider.outstanding == new_grants - 1
    assert sum(len(batch) for _, batch in provider.settled) == 3  # every outcome reported
