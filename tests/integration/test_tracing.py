"""Traces on the real cluster: the SQLite app exports to the session's OTLP/HTTP receiver
(`otlp`, decoding with opentelemetry-proto); the PostgreSQL app has no endpoint (tracing off).

One request is one trace: the ingress's SERVER span (continuing the caller's traceparent) →
the tenant actor's execution span → a CLIENT span per provider attempt (GenAI attributes),
and per tool call an `execute_tool` span → a CLIENT span per MCP request. The provider and
the MCP server get the trace in `traceparent`; the execution's metadata, its Started event
and error bodies carry the trace id.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.mcp_http import RecordingMcpServer
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.sse import read_events

EXECUTE = "/api/v1/agents/{agent_id}/execute"


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _caller() -> tuple[str, str]:
    """A caller's trace id and span id (random, valid)."""
    return os.urandom(16).hex(), os.urandom(8).hex()


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    [span] = [s for s in spans if s.name == name]
    return span


def _started_event(gateway: ApiClient, execution_id: str) -> Any:
    from actors.event_store import EventStore

    store = EventStore(env=gateway.settings.store_env())
    try:
        stored = store.recorder.select_events(uuid.UUID(execution_id), limit=1)
        return store.mapper.to_domain_event(stored[0])
    finally:
        store.close()


def _run(
    gateway: ApiClient, tenant: Tenant, agent_id: str, prompt: str, headers: dict[str, str],
    streamed: bool,
) -> tuple[int, dict[str, Any]]:  # fmt: skip
    """Execute (whole or streamed): the status and the result (a stream's last event)."""
    path = EXECUTE.format(agent_id=agent_id) + ("/stream" if streamed else "")
    headers = {**tenant.headers(), **headers}
    if not streamed:
        reply = gateway.http.post(path, json={"prompt": prompt}, headers=headers)
        return reply.status_code, reply.json()
    with gateway.http.stream("POST", path, json={"prompt": prompt}, headers=headers) as reply:
        events = [e for e in read_events(reply) if e["event"] != "heartbeat"]
    return reply.status_code, events[-1]["data"]


@SQLITE_ONLY
@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_a_request_continuing_a_traceparent_is_one_trace_down_to_the_provider(
    gateway: ApiClient, otlp: OtlpReceiver, streamed: bool
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", parameters={"temperature": 0.2})
    tag = _tag("traced")
    emu.script(tag, content="a traced answer", prompt_tokens=21, completion_tokens=7)
    trace_id, caller_span = _caller()
    headers = {"traceparent": f"00-{trace_id}-{caller_span}-01"}

    status, result = _run(gateway, tenant, agent["id"], tag, headers, streamed)
    assert status == 200 and result["status"] == "completed", result
    assert result["metadata"]["trace_id"] == trace_id

    route = EXECUTE + ("/stream" if streamed else "")
    names = {f"POST {route}", "execute agent_execution", "chat gpt-4o-mini"}
    spans = otlp.wait_for_trace(trace_id, names)
    assert sorted(s.name for s in spans) == sorted(names)  # one span each, nothing else
    server = _one(spans, f"POST {route}")
    execution = _one(spans, "execute agent_execution")
    attempt = _one(spans, "chat gpt-4o-mini")

    assert server.kind == "SERVER" and server.parent_span_id == caller_span
    assert server.attributes["http.route"] == route
    assert server.attributes["http.response.status_code"] == 200
    assert server.resource["service.name"] == "circuit-breaker"
    assert server.resource["cb.process.role"] == "ingress"

    assert execution.kind == "INTERNAL" and execution.parent_span_id == server.span_id
    assert execution.resource["cb.process.role"] == "tenant-actor"
    assert execution.attributes["cb.tenant.id"] == tenant.id
    assert execution.attributes["gen_ai.agent.id"] == agent["id"]
    assert execution.attributes["cb.execution.id"] == result["execution_id"]
    assert execution.attributes["cb.execution.kind"] == "agent_execution"
    assert execution.attributes["cb.execution.status"] == "completed"
    assert execution.status == "UNSET"

    assert attempt.kind == "CLIENT" and attempt.parent_span_id == execution.span_id
    assert attempt.status == "UNSET"
    genai = {k: v for k, v in attempt.attributes.items() if k.startswith("gen_ai.")}
    replied = {
        k: genai.pop(k) for k in ("gen_ai.response.model", "gen_ai.response.id") if k in genai
    }
    assert genai == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.temperature": 0.2,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 21,
        "gen_ai.usage.output_tokens": 7,
    }
    if not streamed:  # a stream's chunks do not say the model
        assert replied["gen_ai.response.model"].startswith("gpt-4o-mini")
    assert attempt.attributes["server.address"] == "127.0.0.1"
    assert attempt.attributes["server.port"] == emu.port

    # the provider got the trace, naming the attempt's span as its parent
    [request] = emu.requests_matching(tag)
    assert request.headers["traceparent"] == f"00-{trace_id}-{attempt.span_id}-01"
    # and the execution's events carry the trace id from its start
    assert _started_event(gateway, result["execution_id"]).trace_id == trace_id


@SQLITE_ONLY
def test_a_streamed_chat_completion_is_one_trace_too(
    gateway: ApiClient, otlp: OtlpReceiver
) -> None:
    """OpenAI's door streams once routed: its start is recorded in the actor's call, its
    stream runs in a task of its own; both are in the execution's span."""
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    tag = _tag("chat")
    emu.script(tag, chunks=["streamed ", "chat"], prompt_tokens=9, completion_tokens=2)
    trace_id, caller_span = _caller()
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": tag}]}  # fmt: skip
    headers = {
        "Authorization": f"Bearer {tenant.api_key}",
        "traceparent": f"00-{trace_id}-{caller_span}-01",
    }
    with gateway.http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
        assert r.status_code == 200
        assert "data: [DONE]" in r.read().decode()
        execution_id = r.headers["x-cb-execution-id"]

    names = {"POST /v1/chat/completions", "execute chat_completion", "chat gpt-4o-mini"}
    spans = otlp.wait_for_trace(trace_id, names)
    server = _one(spans, "POST /v1/chat/completions")
    execution = _one(spans, "execute chat_completion")
    attempt = _one(spans, "chat gpt-4o-mini")
    assert execution.parent_span_id == server.span_id
    assert execution.attributes["cb.execution.id"] == execution_id
    assert execution.attributes["cb.execution.stream"] is True
    assert "gen_ai.agent.id" not in execution.attributes
    assert attempt.parent_span_id == execution.span_id
    assert attempt.attributes["gen_ai.usage.output_tokens"] == 2
    [request] = emu.requests_matching(tag)
    assert request.headers["traceparent"] == f"00-{trace_id}-{attempt.span_id}-01"
    assert gateway.ended_execution(tenant, execution_id)["metadata"]["trace_id"] == trace_id


@SQLITE_ONLY
def test_a_request_without_traceparent_starts_a_trace_named_in_its_result(
    gateway: ApiClient, otlp: OtlpReceiver
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("untraced")
    emu.script(tag, content="fine")
    result = gateway.execute(tenant, agent["id"], tag).json()
    trace_id = result["metadata"]["trace_id"]
    assert len(trace_id) == 32 and int(trace_id, 16)
    spans = otlp.wait_for_trace(trace_id, {f"POST {EXECUTE}", "chat gpt-4o-mini"})
    assert _one(spans, f"POST {EXECUTE}").parent_span_id == ""  # the trace starts here
    [request] = emu.requests_matching(tag)
    assert request.headers["traceparent"].split("-")[1] == trace_id


@SQLITE_ONLY
def test_a_failing_provider_gives_error_spans_and_an_error_body_naming_the_trace(
    gateway: ApiClient, otlp: OtlpReceiver
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("failing")
    emu.script(tag, status=500)  # the provider retries twice: three attempts, all failed
    trace_id, caller_span = _caller()
    reply = gateway.http.post(
        EXECUTE.format(agent_id=agent["id"]),
        json={"prompt": tag},
        headers={**tenant.headers(), "traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    assert reply.status_code == 502, reply.text
    body = reply.json()
    assert body["error"]["type"] == "provider_error" and body["trace_id"] == trace_id

    spans = otlp.wait_for(
        lambda s: (
            sum(x.trace_id == trace_id and x.name == "chat gpt-4o-mini" for x in s) == 3
            and any(x.trace_id == trace_id and x.kind == "SERVER" for x in s)
            and any(x.trace_id == trace_id and x.name == "execute agent_execution" for x in s)
        )
    )
    spans = [s for s in spans if s.trace_id == trace_id]
    server = _one(spans, f"POST {EXECUTE}")
    execution = _one(spans, "execute agent_execution")
    attempts = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert server.status == "ERROR" and server.attributes["http.response.status_code"] == 502
    assert execution.status == "ERROR" and execution.attributes["error.type"] == "provider_error"
    assert execution.attributes["cb.execution.status"] == "failed"
    for attempt in attempts:
        assert attempt.parent_span_id == execution.span_id
        assert attempt.status == "ERROR" and attempt.attributes["error.type"] == "provider_error"
    # each attempt sent its own span as the parent
    sent = {r.headers["traceparent"] for r in emu.requests_matching(tag)}
    assert sent == {f"00-{trace_id}-{a.span_id}-01" for a in attempts}


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[RecordingMcpServer]:
    with RecordingMcpServer() as server:
        yield server


@SQLITE_ONLY
def test_tool_calls_get_spans_and_the_mcp_server_gets_the_trace(
    gateway: ApiClient, otlp: OtlpReceiver, mcp_server: RecordingMcpServer
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    registered = gateway.http.post(
        "/api/v1/mcp/servers",
        json={"name": "traced", "transport": "http", "url": mcp_server.url},
        headers=tenant.headers(),
    )
    assert registered.status_code == 201, registered.text
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["add", "roi_calculator"])
    tag = _tag("tools")
    emu.script(tag, content="Done:", with_tool_results=True)
    roi = {"purchase_price": 200000, "monthly_rent": 1500}
    calls = [
        {"name": "add", "arguments": {"a": 2, "b": 40}},
        {"name": "roi_calculator", "arguments": roi},
    ]
    emu.script(tag, tool_calls=calls, times=1)
    trace_id, caller_span = _caller()
    reply = gateway.http.post(
        EXECUTE.format(agent_id=agent["id"]),
        json={"prompt": tag},
        headers={**tenant.headers(), "traceparent": f"00-{trace_id}-{caller_span}-01"},
    )
    result = reply.json()
    assert result["status"] == "completed", result
    assert [t["error"] for t in result["response"]["tool_results"]] == [None, None]

    names = {"execute agent_execution", "execute_tool add", "execute_tool roi_calculator",
             "tools/call add"}  # fmt: skip
    spans = otlp.wait_for_trace(trace_id, names)
    execution = _one(spans, "execute agent_execution")
    mcp_tool, builtin = _one(spans, "execute_tool add"), _one(spans, "execute_tool roi_calculator")
    mcp_request = _one(spans, "tools/call add")
    assert [s.name for s in spans].count("chat gpt-4o-mini") == 2  # the call, then the answer
    for tool in (mcp_tool, builtin):
        assert tool.parent_span_id == execution.span_id and tool.status == "UNSET"
        assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert mcp_tool.attributes["gen_ai.tool.name"] == "add"
    assert mcp_tool.attributes["gen_ai.tool.type"] == "extension"
    assert builtin.attributes["gen_ai.tool.type"] == "function"
    assert mcp_request.kind == "CLIENT" and mcp_request.parent_span_id == mcp_tool.span_id
    assert mcp_request.attributes["mcp.method.name"] == "tools/call"
    assert mcp_request.attributes["server.port"] == mcp_server.port

    # the MCP server got the trace: in a header and in the request's _meta
    [call] = [p for p in mcp_server.posts_of("tools/call") if f"00-{trace_id}-" in str(p.body)]
    expected = f"00-{trace_id}-{mcp_request.span_id}-01"
    assert call.headers["traceparent"] == expected
    assert call.body["params"]["_meta"]["traceparent"] == expected


@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_with_tracing_off_the_caller_trace_is_passed_on_and_no_span_is_made(
    gateway: ApiClient, otlp: OtlpReceiver
) -> None:
    """The PostgreSQL app has no OTLP endpoint: the caller's traceparent reaches the
    provider unchanged, its trace id is in the result, and nothing is exported."""
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("off")
    emu.script(tag, content="untraced")
    trace_id, caller_span = _caller()
    traceparent = f"00-{trace_id}-{caller_span}-01"
    headers = {**tenant.headers(), "traceparent": traceparent}
    reply = gateway.http.post(
        EXECUTE.format(agent_id=agent["id"]), json={"prompt": tag}, headers=headers
    )
    assert reply.json()["metadata"]["trace_id"] == trace_id
    [request] = emu.requests_matching(tag)
    assert request.headers["traceparent"] == traceparent
    # a request to the traced app after it: once its span has arrived, any of this one's
    # would have too (both export within a second)
    marker, _ = _caller()
    sqlite = ApiClient(gateway.cluster, "sqlite")
    try:
        sqlite.http.get("/health", headers={"traceparent": f"00-{marker}-{caller_span}-01"})
    finally:
        sqlite.close()
    otlp.wait_for_trace(marker, {"GET /health"})
    time.sleep(1.5)
    assert otlp.trace(trace_id) == []
