"""Leased provider credits: one actor call serves many attempts; everything is settled back."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import provider_lease
from actors.provider_lease import ProviderLease
from tests.unit.fakes import Method


class FakeProvider:
    """Stands in for the ProviderActor handle: same method names, counts its calls; its
    `incarnation` changes when the test says it was started again."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.outstanding = 0
        self.lease_calls = 0
        self.incarnation = "first"
        self.settled: list[tuple[int, list[Any]]] = []  # by settle calls
        self.carried: list[tuple[int, list[Any]]] = []  # by lease calls
        self.lease = Method(self._lease)
        self.settle = Method(self._settle)

    async def _lease(
        self,
        want: int,
        timeout_s: float,
        returned: int = 0,
        outcomes: list[Any] | tuple[()] = (),
        incarnation: str | None = None,
        view: bool = False,
    ) -> dict[str, Any]:
        self.lease_calls += 1
        if returned or outcomes:
            self.carried.append((self._take_back(returned, incarnation), list(outcomes)))
        granted = min(want, self.capacity - self.outstanding)
        if granted == 0:
            return {"error": {"type": "provider_rate_limited", "message": "full"}}
        self.outstanding += granted
        roomy = 2 * (self.capacity - self.outstanding) >= self.capacity  # as ProviderActor.lease
        grant: dict[str, Any] = {"credits": granted, "roomy": roomy}
        grant["incarnation"] = self.incarnation
        if view:
            grant["view"] = {"breaker": "closed", "models": {"m": {"at": self.lease_calls}}}
        return {"value": grant}  # the reply convention: actors.replies

    def _settle(self, returned: int, outcomes: list[Any], incarnation: str | None = None) -> None:
        self.settled.append((self._take_back(returned, incarnation), outcomes))

    def _take_back(self, returned: int, incarnation: str | None) -> int:
        if incarnation is not None and incarnation != self.incarnation:
            return 0  # as ProviderActor.settle: another incarnation's grants
        self.outstanding -= returned
        return returned

    def all_outcomes(self) -> list[Any]:
        return [o for _, batch in self.settled + self.carried for o in batch]


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
    outcomes = provider.all_outcomes()
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
    provider.incarnation = "dead"
    lease = ProviderLease(provider)
    assert await lease.take(1.0) is None
    assert await lease.take(1.0) is None  # two attempts in flight on the first actor's grants
    lease.credits = 0  # spent: the next take leases
    # the actor dies and comes back empty
    provider.generation = 1  # type: ignore[attr-defined]
    provider.outstanding, provider.incarnation = 0, "new"
    assert await lease.take(1.0) is None  # leased from the new actor
    new_grants = provider.outstanding
    for _ in range(3):
        lease.done(True, 1.0, None, None, "m")
    await asyncio.sleep(provider_lease.IDLE_RETURN_S + provider_lease.FLUSH_S * 3)
    returned = sum(r for r, _ in provider.settled + provider.carried)
    assert returned == new_grants  # only the new actor's own grants came back (idle: all)
    assert provider.outstanding == 0
    assert len(provider.all_outcomes()) == 3  # every outcome reported


async def test_spent_slots_and_outcomes_ride_the_next_lease_call() -> None:
    provider = FakeProvider(capacity=100)
    lease = ProviderLease(provider)
    for _ in range(3):  # one at a time, each finding no credit left: a lease call each
        assert await lease.take(1.0) is None
        lease.done(True, 1.0, None, None, "m")
        lease.credits = 0
    assert provider.lease_calls == 3 and provider.settled == []  # no settle call of its own
    assert [returned for returned, _ in provider.carried] == [1, 1]
    assert len(provider.all_outcomes()) == 2  # the third waits for the next call


async def test_returns_sent_to_a_restarted_provider_actor_free_none_of_its_slots() -> None:
    """Spent slots of the dead incarnation's grants, sent (on a lease) to the new one that
    never granted them, are not taken back there; their outcomes still count."""
    provider = FakeProvider(capacity=100)
    lease = ProviderLease(provider)
    assert await lease.take(1.0) is None
    await _leased_ahead(lease)
    lease.done(True, 1.0, None, None, "m")
    lease.credits = 0
    provider.outstanding, provider.incarnation = 0, "new"  # died, started again, empty
    assert await lease.take(1.0) is None
    assert provider.carried == [(0, [(True, 1.0, None, None, "m")])]
    # the new grant (with spares: the first lease found room), nothing taken back
    assert provider.outstanding == 1 + provider_lease.ROOMY_PREFETCH


async def test_while_the_provider_has_room_settles_are_rare_and_failures_go_at_once(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(provider_lease, "LAZY_FLUSH_S", 0.5)
    monkeypatch.setattr(provider_lease, "IDLE_RETURN_S", 10.0)

    async def trickle(lease: ProviderLease, seconds: float) -> None:
        """An attempt every 10 ms, each spending a leased credit (no lease call between)."""
        lease.credits = 1000
        for _ in range(int(seconds / 0.01)):
            assert await lease.take(1.0) is None
            lease.done(True, 1.0, None, None, "m")
            await asyncio.sleep(0.01)

    roomy = FakeProvider(capacity=1000)
    lease = ProviderLease(roomy)
    assert await lease.take(1.0) is None  # the lease: 999 of 1,000 slots free
    await trickle(lease, 0.4)
    assert roomy.settled == []  # under LAZY_FLUSH_S: nothing sent yet
    lease.done(False, 1.0, "provider_error", None, "m")
    await asyncio.sleep(provider_lease.FLUSH_S * 2.5)
    assert len(roomy.settled) == 1 and roomy.settled[0][1][-1][2] == "provider_error"

    tight = FakeProvider(capacity=3)
    lease = ProviderLease(tight)
    assert await lease.take(1.0) is None  # 1 of 3 free after this lease: short of slots
    await trickle(lease, 0.4)
    assert len(tight.settled) >= 3  # every FLUSH_S


async def test_a_lease_asks_for_spares_only_while_the_provider_has_room() -> None:
    for others, spares in ((0, provider_lease.ROOMY_PREFETCH), (80, provider_lease.PREFETCH)):
        provider = FakeProvider(capacity=100)
        provider.outstanding = others  # other tenants' slots: with 80, under half are free
        lease = ProviderLease(provider)
        assert await lease.take(1.0) is None  # the first lease knows nothing: one spare
        await _leased_ahead(lease)
        lease.credits = 0
        before = provider.outstanding
        assert await lease.take(1.0) is None
        assert provider.outstanding - before == 1 + spares, others


async def _leased_ahead(lease: ProviderLease) -> None:
    """Wait for the lease a take started ahead, if one is in flight."""
    if lease._leasing is not None:
        await lease._leasing


async def test_a_roomy_provider_is_leased_from_ahead_so_a_steady_caller_never_waits() -> None:
    """One attempt at a time: the next lease goes out while credits are left, so no attempt
    after the first finds none (each would wait for a lease call)."""
    provider = FakeProvider(capacity=100)
    lease = ProviderLease(provider)
    found_none = 0
    for _ in range(60):
        found_none += lease.credits == 0
        assert await lease.take(1.0) is None
        lease.done(True, 1.0, None, None, "m")
        await asyncio.sleep(0.002)
    assert found_none == 1  # the first
    assert provider.lease_calls <= 60 / provider_lease.ROOMY_PREFETCH + 1


async def test_a_provider_short_of_room_is_leased_from_only_when_credits_run_out() -> None:
    provider = FakeProvider(capacity=100)
    provider.outstanding = 80  # other tenants': under half the slots free
    lease = ProviderLease(provider)
    for _ in range(6):
        assert await lease.take(1.0) is None
        lease.done(True, 1.0, None, None, "m")
        await asyncio.sleep(0.002)
    assert lease.credits == 0 and provider.lease_calls == 3  # 2 credits a lease, none ahead


class Views:
    """Stands in for the tenant's RoutingView: wants a view while `wanting` is set."""

    def __init__(self) -> None:
        self.wanting = True
        self.taken: list[tuple[str, dict[str, Any]]] = []

    def wants_view(self, endpoint: str) -> bool:
        return self.wanting

    def take_view(self, endpoint: str, view: dict[str, Any]) -> None:
        self.taken.append((endpoint, view))


async def test_a_lease_call_brings_the_routing_view_only_when_it_is_wanted() -> None:
    provider, views = FakeProvider(capacity=100), Views()
    lease = ProviderLease(provider, "openai:eu", views)
    assert await lease.take(1.0) is None
    assert views.taken == [("openai:eu", {"breaker": "closed", "models": {"m": {"at": 1}}})]
    views.wanting, lease.credits = False, 0
    assert await lease.take(1.0) is None
    assert provider.lease_calls == 2 and len(views.taken) == 1  # not asked, none brought


async def test_a_trickle_on_a_roomy_provider_leases_several_windows_of_demand_at_once() -> None:
    """A tenant seeing a few attempts a window (one of many tenants) asks, while the provider
    has room, for `ROOMY_WINDOWS` windows of them: a lease call per half second, not one
    every few attempts."""
    provider = FakeProvider(capacity=1000)
    lease = ProviderLease(provider)

    async def attempts(n: int) -> None:
        for _ in range(n):
            assert await lease.take(1.0) is None
            lease.done(True, 1.0, None, None, "m")
            await asyncio.sleep(0.01)  # ~a few attempts a window

    await attempts(40)  # the demand is learnt
    assert lease.roomy and lease.recent_demand >= 2
    before = provider.lease_calls
    await attempts(100)
    per_call = 100 / (provider.lease_calls - before)
    assert per_call >= (provider_lease.ROOMY_WINDOWS - 1) * lease.recent_demand, per_call
