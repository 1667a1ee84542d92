"""Ingress admission without a cluster: the fair bounded queue, the adaptive limit, the
gate's turns and waits, and remembered rate refusals."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from api.admission import Admission, Gate, Refusals, RefusalShortcut
from domain.admission import AdaptiveLimit, FairQueue, retry_after_s
from domain.config import IngressLimits
from domain.errors import Overloaded, RateLimited

SMALL = IngressLimits(max_in_flight=2, max_queued=4, max_queued_per_tenant=2)


def test_the_queue_serves_tenants_in_turn_within_its_bounds() -> None:
    queue: FairQueue[str] = FairQueue()
    for item in ("a1", "a2"):
        queue.push("a", item, SMALL, 1)
    queue.push("b", "b1", SMALL, 1)
    with pytest.raises(Overloaded) as per_tenant:
        queue.push("a", "a3", SMALL, 7)
    assert per_tenant.value.details["limit"] == "max_queued_per_tenant"
    assert per_tenant.value.retry_after == 7 and per_tenant.value.status == 503
    queue.push("c", "c1", SMALL, 1)
    with pytest.raises(Overloaded) as full:
        queue.push("d", "d1", SMALL, 1)
    assert full.value.details["limit"] == "max_queued"
    assert queue.remove("c", "c1") and not queue.remove("c", "c1")
    assert [queue.pop() for _ in range(4)] == ["a1", "b1", "a2", None]
    assert queue.size == 0


def test_retry_after_follows_the_queue_and_the_pace() -> None:
    assert retry_after_s(0, 2, 0.05) == 1  # never below a second
    assert retry_after_s(9, 2, 1.0) == 5  # ten waiting, two slots, a second each
    assert retry_after_s(10_000, 2, 1.0) == 30  # capped


def test_the_adaptive_limit_falls_with_loop_lag_and_recovers_under_demand() -> None:
    limits = IngressLimits(max_in_flight=100, min_in_flight=4, target_loop_lag_ms=20)
    adaptive = AdaptiveLimit(100)
    assert adaptive.update(0.080, 50, limits) == 40  # lagging: 80 % of what ran
    assert adaptive.update(0.080, 40, limits) == 32
    assert adaptive.update(0.015, 32, limits) == 32  # neither lagging nor well clear
    assert adaptive.update(0.002, 10, limits) == 32  # clear, but the limit is not in use
    assert adaptive.update(0.002, 32, limits) == 36  # clear and in use: +10 % + 1
    for _ in range(40):
        adaptive.update(0.5, 1, limits)
    assert int(adaptive.limit) == 4  # never under the floor
    for _ in range(100):
        adaptive.update(0.0, int(adaptive.limit), limits)
    assert int(adaptive.limit) == 100  # nor over the configured bound
    off = IngressLimits(max_in_flight=100, target_loop_lag_ms=0)
    assert adaptive.update(5.0, 100, off) == 100  # adaptation off


def test_a_replica_short_of_cpu_runs_fewer_at_once() -> None:
    """Executions that hog the event loop (blocking 3 ms each) make it lag; the gate
    lowers its limit from 16 to the floor while the work queues fairly."""

    async def scenario() -> tuple[int, int]:
        gate = Gate()
        limits = IngressLimits(max_in_flight=16, min_in_flight=2, target_loop_lag_ms=10)

        async def hog(tenant: str) -> None:
            async with gate.slot(tenant, limits):
                await asyncio.sleep(0)
                time.sleep(0.003)  # CPU work the loop cannot interleave

        started = gate.limit(limits)
        await asyncio.gather(*(hog(f"t{i % 4}") for i in range(300)))
        return started, gate.limit(limits)

    started, ended = asyncio.run(scenario())
    assert started == 16 and ended <= 3


def test_a_flooding_tenant_delays_another_by_one_turn() -> None:
    """Ten of A's executions wait; B's one is let in at the next free slot."""

    async def scenario() -> list[str]:
        gate, order = Gate(), []
        limits = IngressLimits(max_in_flight=1, max_queued=64, max_queued_per_tenant=32)

        async def run(tenant: str, name: str) -> None:
            async with gate.slot(tenant, limits):
                order.append(name)
                await asyncio.sleep(0.01)

        flood = [asyncio.create_task(run("a", f"a{i}")) for i in range(10)]
        await asyncio.sleep(0.001)  # a0 runs, a1..a9 wait
        late = asyncio.create_task(run("b", "b"))
        await asyncio.gather(*flood, late)
        assert gate.stats()["in_flight"] == 0 and gate.stats()["queued"] == 0
        return order

    order = asyncio.run(scenario())
    assert order.index("b") == 2  # after a0 and a1 (whose turn came first), not after a9


def test_a_wait_that_runs_out_is_overloaded_and_gives_its_place_back() -> None:
    async def scenario() -> None:
        gate = Gate()
        limits = IngressLimits(max_in_flight=1, max_queue_wait_s=0.05)
        async with gate.slot("a", limits):
            with pytest.raises(Overloaded) as waited:
                async with gate.slot("b", limits):
                    raise AssertionError("no slot was free")
            assert waited.value.details == {"limit": "max_queue_wait_s"}
            assert gate.stats()["queued"] == 0
        async with gate.slot("b", limits):  # the slot is free again
            assert gate.stats()["in_flight"] == 1

    asyncio.run(scenario())


def test_a_rate_refusal_is_answered_again_without_asking_the_actor() -> None:
    async def scenario() -> int:
        admission = Admission()
        calls = 0
        tenant = f"t-{uuid.uuid4()}"
        headers = {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0",
                   "X-RateLimit-Reset": "60"}  # fmt: skip
        for _ in range(3):
            with pytest.raises(RateLimited) as refused:
                async with admission.admitted(tenant, IngressLimits()):
                    calls += 1  # the actor's answer:
                    raise RateLimited("over", retry_after=30.0,
                                      details={"limit": "requests_per_minute",
                                               "headers": headers})  # fmt: skip
            assert refused.value.details["headers"]["X-RateLimit-Remaining"] == "0"
            assert 29 < refused.value.retry_after <= 30
        return calls

    assert asyncio.run(scenario()) == 1


def test_a_refused_credential_is_answered_before_routing_and_no_other_is() -> None:
    """RefusalShortcut: the app behind it is not reached again for the refused credential
    until the Retry-After; another credential (or none) still reaches it."""
    reached: list[str] = []
    tenant = f"t-{uuid.uuid4()}"
    refusals = Refusals()

    async def app(scope: Any, receive: Any, send: Any) -> None:  # the full path, refusing
        reached.append(dict(scope["headers"]).get(b"authorization", b"").decode())
        refusals.note(tenant, RateLimited("over", retry_after=30.0,
                                          details={"limit": "requests_per_minute"}))  # fmt: skip
        await send({"type": "http.response.start", "status": 429, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=RefusalShortcut(app, refusals))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            statuses = []
            for key in ("Bearer one", "Bearer one", "Bearer two", "Bearer one"):
                reply = await client.post(
                    "/api/v1/agents/x/execute",
                    json={},
                    headers={"X-Tenant-ID": tenant, "Authorization": key},
                )
                statuses.append(reply.status_code)
            other = await client.post(
                "/api/v1/agents/x/execute",
                json={},
                headers={"X-Tenant-ID": "another", "Authorization": "Bearer one"},
            )
            statuses.append(other.status_code)
            shortcut = await client.post(
                "/api/v1/agents/x/execute",
                json={},
                headers={"X-Tenant-ID": tenant, "Authorization": "Bearer two"},
            )
            assert shortcut.json()["error"]["type"] == "rate_limited"
            assert shortcut.headers["X-RateLimit-Remaining"] == "0"
            assert 29 <= int(shortcut.headers["Retry-After"]) <= 30
        return statuses

    assert asyncio.run(scenario()) == [429] * 5
    assert reached == ["Bearer one", "Bearer two", "Bearer one"]  # the last: tenant "another"


def test_only_request_rate_refusals_are_remembered() -> None:
    remembered = Refusals()
    busy = RateLimited("busy", retry_after=1.0, details={"limit": "max_concurrent_executions"})
    remembered.note("t", busy)
    remembered.check("t")  # nothing held: a concurrency slot can free at any moment
    remembered.note("t", RateLimited("rate", retry_after=0.05,
                                     details={"limit": "requests_per_minute"}))  # fmt: skip
    with pytest.raises(RateLimited):
        remembered.check("t")
    time.sleep(0.06)
    remembered.check("t")  # its time is up
