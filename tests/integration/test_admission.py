"""Ingress admission on a running app: 503 `overloaded` with Retry-After, a flooding
tenant delaying another by one turn, and the ingress limits an admin sets."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import pytest

from domain.config import IngressLimits
from tests.support.client import ApiClient


def _replica_ingress(gw: ApiClient) -> dict[str, Any]:
    reply = gw.http.get("/api/v1/admin/config", headers=gw.admin)
    assert reply.status_code == 200, reply.text
    return reply.json()["replica"]["ingress"]


@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_overload_is_a_503_with_retry_after_and_another_tenant_gets_the_next_turn(
    gateway: ApiClient,
) -> None:
    """On the one-replica app: two slots, two of A's executions held at the provider, two
    more waiting; A's fifth is refused at once, and B's request runs before A's fourth."""
    gw, emulator = gateway, gateway.cluster.emulator
    tag = f"flood-{uuid.uuid4().hex[:8]}"
    emulator.script(tag, delay=2.5)
    a, b = gw.new_tenant("Flooder"), gw.new_tenant("Steady")
    agent_a, agent_b = gw.new_agent(a)["id"], gw.new_agent(b)["id"]
    limits = {"max_in_flight": 2, "max_queued": 4, "max_queued_per_tenant": 2}
    set_reply = gw.http.put("/api/v1/admin/config/ingress", json=limits, headers=gw.admin)
    assert set_reply.status_code == 200, set_reply.text
    replies: dict[str, httpx.Response] = {}

    def send(name: str, tenant: Any, agent: str, prompt: str) -> threading.Thread:
        worker = threading.Thread(
            target=lambda: replies.update({name: gw.execute(tenant, agent, prompt)})
        )
        worker.start()
        return worker

    try:
        # A's two held executions start half a second apart, so their slots free one at a
        # time and the order of the next admissions cannot race at the provider
        deadline = time.monotonic() + 10
        workers: list[threading.Thread] = []
        for i in range(2):
            workers.append(send(f"a{i}", a, agent_a, f"{tag} {i}"))
            while len(emulator.requests_matching(tag)) < i + 1:
                assert time.monotonic() < deadline, f"a{i} never reached the provider"
                time.sleep(0.02)
            time.sleep(0.5 * (1 - i))
        workers += [send(f"a{i}", a, agent_a, f"{tag} {i}") for i in (2, 3)]
        while _replica_ingress(gw)["queued"] < 2:
            assert time.monotonic() < deadline, "the next two never queued"
            time.sleep(0.02)

        refused = gw.execute(a, agent_a, f"{tag} 4")
        assert refused.status_code == 503, refused.text
        error = refused.json()["error"]
        assert error["type"] == "overloaded"
        assert error["details"]["limit"] == "max_queued_per_tenant"
        assert int(refused.headers["Retry-After"]) >= 1

        b_tag = f"steady-{uuid.uuid4().hex[:8]}"
        started = time.monotonic()
        steady = gw.execute(b, agent_b, b_tag)
        waited = time.monotonic() - started
        assert steady.status_code == 200, steady.text  # queued, not refused
        for worker in workers:
            worker.join(timeout=30)
        assert all(replies[f"a{i}"].status_code == 200 for i in range(4)), replies

        seen = sorted(emulator.requests, key=lambda r: r.received_at)
        order = [r for r in seen if any(tag in t or b_tag in t for t in r.texts)]
        names = ["b" if any(b_tag in t for t in r.texts) else r.texts[-1][-1] for r in order]
        # A's first two reach the provider first; A's first queued execution takes the first
        # freed slot and B the second, before A's other queued one (which of A's two queued
        # goes first is thread scheduling); FIFO puts B last
        assert names[:2] == ["0", "1"] and names[3] == "b", names
        assert waited < 2.5 + 1.5  # a turn: the second slot freed, not A's whole queue
    finally:
        defaults = IngressLimits().model_dump()
        gw.http.put("/api/v1/admin/config/ingress", json=defaults, headers=gw.admin)


@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_invalid_ingress_limits_are_refused_with_their_path(gateway: ApiClient) -> None:
    reply = gateway.http.put(
        "/api/v1/admin/config/ingress", json={"max_in_flight": 0}, headers=gateway.admin
    )
    assert reply.status_code == 400, reply.text
    assert "ingress.max_in_flight" in reply.json()["error"]["message"]


@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_a_stream_past_max_open_streams_is_refused_at_once_and_whole_requests_go_on(
    gateway: ApiClient,
) -> None:
    """With one stream allowed open, a second (any tenant, either door) is a 503 at once, a
    whole request still runs, and once the first stream ends a new one is let in."""
    gw, emulator = gateway, gateway.cluster.emulator
    tag = f"held-open-{uuid.uuid4().hex[:8]}"
    emulator.script(tag, chunks=[f"{i} " for i in range(10)], chunk_delay=0.5)
    a, b = gw.new_tenant("Streamer"), gw.new_tenant("Other")
    agent_a, agent_b = gw.new_agent(a)["id"], gw.new_agent(b)["id"]
    deadline = time.monotonic() + 10
    while _replica_ingress(gw)["open_streams"]:  # what earlier tests opened has closed
        assert time.monotonic() < deadline, "streams of earlier tests stayed open"
        time.sleep(0.05)
    set_reply = gw.http.put(
        "/api/v1/admin/config/ingress", json={"max_open_streams": 1}, headers=gw.admin
    )
    assert set_reply.status_code == 200, set_reply.text
    stream_b = f"/api/v1/agents/{agent_b}/execute/stream"
    try:
        path = f"/api/v1/agents/{agent_a}/execute/stream"
        with gw.http.stream("POST", path, json={"prompt": tag}, headers=a.headers()) as first:
            assert first.status_code == 200
            lines = first.iter_lines()  # kept: a dropped iterator would close the stream
            assert any("content_chunk" in line for line in lines)  # it is open
            assert _replica_ingress(gw)["open_streams"] == 1

            started = time.monotonic()
            refused = gw.http.post(stream_b, json={"prompt": "hi"}, headers=b.headers())
            assert time.monotonic() - started < 2.0  # refused at once, not queued
            assert refused.status_code == 503, refused.text
            error = refused.json()["error"]
            assert error["type"] == "overloaded"
            assert error["details"]["limit"] == "max_open_streams"
            assert refused.headers["Retry-After"] == "1"

            chat = gw.http.post(
                "/v1/chat/completions",
                json={"model": f"agent:{agent_b}", "stream": True,
                      "messages": [{"role": "user", "content": "hi"}]},
                headers=b.headers(),
            )  # fmt: skip
            assert chat.status_code == 503, chat.text
            assert chat.json()["error"]["code"] == "overloaded"

            whole = gw.execute(b, agent_b, "still served")
            assert whole.status_code == 200, whole.text
            assert whole.json()["status"] == "completed"

        deadline = time.monotonic() + 10
        while _replica_ingress(gw)["open_streams"]:
            assert time.monotonic() < deadline, "the first stream never closed"
            time.sleep(0.05)
        again = gw.http.post(stream_b, json={"prompt": "hi"}, headers=b.headers())
        assert again.status_code == 200, again.text
        assert "execution_complete" in again.text
    finally:
        defaults = IngressLimits().model_dump()
        gw.http.put("/api/v1/admin/config/ingress", json=defaults, headers=gw.admin)
