"""Timeouts, the breaker end to end, capability checks and estimated usage, on the real gateway.

The `flaky` provider of the test configuration (tests/config.yaml) points at the emulator
with a 0.6 s first-token timeout, no retries and a breaker that opens after two failures and
half-opens after 2.5 s; `test:flaky-first` tries it before gpt-4o-mini. `brittle` is its
twin, for the breaker test alone.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.providers import health_of
from tests.support.sse import read_events, stream

pytestmark = SQLITE_ONLY  # provider behaviour: the storage backend cannot change it


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _models_called(gateway: ApiClient, tag: str) -> list[str]:
    return [r.body["model"] for r in gateway.cluster.emulator.requests_matching(tag)]


def test_a_stream_without_a_first_token_in_time_falls_back(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="test:flaky-first")
    tag = _tag("ttft")
    emu.script(tag, chunks=["quick ", "answer"])
    emu.script(tag, chunks=["too ", "late"], chunk_delay=1.5, times=1)  # headers at once

    with stream(gateway, tenant, agent["id"], tag) as reply:
        events = read_events(reply)
    done = events[-1]
    assert done["event"] == "execution_complete", events
    result = done["data"]
    assert result["response"]["content"] == "quick answer"
    meta = result["metadata"]
    assert meta["fallback_used"] is True and meta["model_resolved"] == "gpt-4o-mini"
    first = meta["attempt_log"][0]
    assert first["model"] == "flaky-chat" and first["error"] == "provider_timeout"
    assert 500 <= first["latency_ms"] < 1400  # cut at the first-token deadline, not the reply
    assert _models_called(gateway, tag) == ["flaky-model", "gpt-4o-mini"]


def test_a_whole_reply_without_headers_in_time_falls_back(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="test:flaky-first")
    tag = _tag("ttfb")
    emu.script(tag, content="second model")
    emu.script(tag, content="never seen", delay=2.0, times=1)

    result = gateway.execute(tenant, agent["id"], tag).json()
    assert result["status"] == "completed", result
    assert result["response"]["content"] == "second model"
    assert result["metadata"]["attempt_log"][0]["error"] == "provider_timeout"


def _routing_skip(result: dict[str, Any], model: str) -> str | None:
    candidates = result["metadata"]["routing"]["candidates"]
    return next(c["skipped"] for c in candidates if c["model"] == model)


def test_the_breaker_opens_routing_skips_it_then_a_probe_closes_it(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    headers = tenant.headers()
    agent = gateway.new_agent(tenant, model="test:brittle-first")
    tag = _tag("brk")
    emu.script(tag, content="from a healthy model")
    for _ in range(2):  # two failures of brittle, each saved by the fallback
        emu.script(tag, status=500, times=1)
        result = gateway.execute(tenant, agent["id"], tag).json()
        assert result["status"] == "completed" and result["metadata"]["fallback_used"] is True

    opened = health_of(gateway, headers, "brittle", lambda h: h["breaker"] == "open")
    assert opened["breaker"] == "open"
    assert opened["breaker_opened_because"] == "2 consecutive failures"

    calls_before = len(emu.requests_matching(tag))
    deadline = time.monotonic() + 2.0  # within the cooldown routing must skip it
    skipped = None
    while skipped is None and time.monotonic() < deadline:
        result = gateway.execute(tenant, agent["id"], tag).json()
        skipped = _routing_skip(result, "brittle-chat")
    assert skipped == "provider brittle circuit open", result["metadata"]["routing"]
    assert result["metadata"]["model_resolved"] == "gpt-4o-mini"
    assert result["metadata"]["fallback_used"] is False  # skipped, not tried
    assert "brittle-chat" not in _models_called(gateway, tag)[calls_before:]

    time.sleep(2.6)  # the cooldown passes: the next execution is the half-open probe
    probe = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        probe = gateway.execute(tenant, agent["id"], tag).json()
        if probe["metadata"]["model_resolved"] == "brittle-chat":
            break
        time.sleep(0.3)
    assert probe is not None and probe["metadata"]["model_resolved"] == "brittle-chat", probe
    closed = health_of(gateway, headers, "brittle", lambda h: h["breaker"] == "closed")
    assert closed["breaker"] == "closed" and closed["consecutive_failures"] == 0


def test_tools_on_a_model_without_tool_support_are_a_400(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    headers = tenant.headers()
    refused = gateway.http.post(
        "/api/v1/agents",
        json={"name": "T", "model": "plain-chat", "tools": ["statistical_analyzer"]},
        headers=headers,
    )
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "capability_not_supported" and "lacks tools" in error["message"]

    agent = gateway.new_agent(tenant, model="plain-chat")
    tag = _tag("tools")
    reply = gateway.execute(tenant, agent["id"], tag, tools=["statistical_analyzer"])
    assert reply.status_code == 400, reply.text  # a request may not widen the agent's tools
    assert reply.json()["error"]["type"] == "unknown_tool"
    assert not gateway.cluster.emulator.requests_matching(tag)  # nothing was sent

    patched = gateway.http.patch(
        f"/api/v1/agents/{agent['id']}", json={"tools": ["statistical_analyzer"]}, headers=headers
    )
    assert patched.status_code == 400
    assert patched.json()["error"]["type"] == "capability_not_supported"
    # a virtual name with a tool-capable candidate takes tools
    gateway.new_agent(tenant, model="test:flaky-first", tools=["statistical_analyzer"])


def test_a_stream_without_provider_usage_is_estimated_and_marked(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("est")
    emu.script(tag, chunks=["sixteen chars ", "of text"], stream_usage=False)

    with stream(gateway, tenant, agent["id"], tag) as reply:
        events = read_events(reply)
    result = events[-1]["data"]
    assert events[-1]["event"] == "execution_complete", events
    usage = result["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == 6  # ceil(21 characters / 4)
    assert usage["prompt_tokens"] > 0 and usage["cost_usd"] > 0
    final_update = [e for e in events if e["event"] == "usage_update"][-1]["data"]
    assert final_update["estimated"] is True

    emu.script(tag + "-counted", chunks=["counted"])
    with stream(gateway, tenant, agent["id"], tag + "-counted") as reply:
        counted = read_events(reply)[-1]["data"]["usage"]
    assert counted["estimated"] is False
