"""OpenAI's door: the official `openai` Python SDK against `POST /v1/chat/completions`."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from tests.support.client import SQLITE_ONLY, ApiClient


def _tag(kind: str) -> str:
    return f"oa-{kind}-{uuid.uuid4().hex[:8]}"


def _client(gateway: ApiClient, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.cluster.url(gateway.backend) + "/v1", api_key=key, max_retries=0
    )


def test_a_whole_completion_is_openai_shaped_and_recorded(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    tag = _tag("whole")
    emu.script(tag, content="Paris is the capital.", prompt_tokens=21, completion_tokens=5)
    raw = _client(gateway, tenant.api_key).chat.completions.with_raw_response.create(
        model="cb:smart-chat",
        messages=[
            {"role": "developer", "content": "Answer in one line."},
            {"role": "user", "content": [{"type": "text", "text": f"Capital? {tag}"}]},
        ],
        temperature=0.2,
        max_completion_tokens=50,
        user="end-user-7",
    )
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == "Paris is the capital."
    assert completion.choices[0].finish_reason == "stop"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (21, 5)
    execution_id = raw.headers["x-cb-execution-id"]
    assert completion.id == "chatcmpl-" + execution_id.replace("-", "")
    assert raw.headers["x-cb-model-resolved"] == completion.model
    assert raw.headers["x-cb-provider"] == "openai"
    assert raw.headers["x-ratelimit-remaining"]

    [sent] = emu.requests_matching(tag)
    assert sent.body["messages"][0] == {"role": "system", "content": "Answer in one line."}
    assert sent.body["temperature"] == 0.2 and sent.body["max_tokens"] == 50

    view = gateway.ended_execution(tenant, execution_id)
    assert view["kind"] == "chat_completion" and view["status"] == "completed"
    assert view["agent_id"] is None
    assert view["usage"]["total_tokens"] == 26 and view["usage"]["cost_usd"] > 0
    assert view["metadata"]["request_metadata"] == {}  # `user` is the data subject...
    subject = gateway.http.get("/api/v1/subjects/end-user-7", headers=tenant.headers()).json()
    assert [e["execution_id"] for e in subject["executions"]] == [execution_id]  # ...found so
    listed = gateway.http.get(
        "/api/v1/executions", params={"kind": "chat_completion"}, headers=tenant.headers()
    ).json()["executions"]
    assert [e["execution_id"] for e in listed] == [execution_id]


def test_a_stream_sends_chunks_then_usage_then_done(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    tag = _tag("stream")
    emu.script(tag, chunks=["Ray ", "Serve ", "streams."], prompt_tokens=9, completion_tokens=3)
    stream = _client(gateway, tenant.api_key).chat.completions.create(
        model="cb:smart-chat",
        messages=[{"role": "user", "content": tag}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Ray Serve streams."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 12
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    execution_id = stream.response.headers["x-cb-execution-id"]
    view = gateway.ended_execution(tenant, execution_id)
    assert view["kind"] == "chat_completion" and view["stream"] is True
    assert view["usage"]["total_tokens"] == 12

    # without include_usage: no usage chunk, and the raw stream ends with [DONE]
    plain = httpx.post(
        gateway.cluster.url(gateway.backend) + "/v1/chat/completions",
        json={
            "model": "cb:smart-chat",
            "stream": True,
            "messages": [{"role": "user", "content": tag}],
        },
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=30,
    )
    data = [line[6:] for line in plain.text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    assert all("usage" not in json.loads(d) for d in data[:-1])


@SQLITE_ONLY
def test_client_tools_go_back_to_the_client_whole_and_streamed(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    client = _client(gateway, tenant.api_key)
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]  # fmt: skip
    for stream in (False, True):
        tag = _tag(f"tools-{stream}")
        emu.script(tag, content="It is", with_tool_results=True)
        emu.script(tag, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
                   times=1)  # fmt: skip
        messages: list[dict[str, Any]] = [{"role": "user", "content": f"Weather? {tag}"}]
        if stream:
            chunks = list(client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=tools, stream=True))  # fmt: skip
            deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
            call_id = next(d.id for d in deltas if d.id)
            name = "".join(d.function.name or "" for d in deltas)
            arguments = "".join(d.function.arguments or "" for d in deltas)
            assert chunks[-1].choices[0].finish_reason == "tool_calls"
        else:
            reply = client.chat.completions.create(
                model="gpt-4o-mini", messages=messages, tools=tools, tool_choice="auto"
            )
            assert reply.choices[0].finish_reason == "tool_calls"
            [call] = reply.choices[0].message.tool_calls
            call_id, name, arguments = call.id, call.function.name, call.function.arguments
        assert name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
        [first] = emu.requests_matching(tag)
        assert first.body["tools"] == tools
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": call_id, "content": f"sunny-{tag}"},
        ]  # fmt: skip
        final = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
        assert f"sunny-{tag}" in final.choices[0].message.content
        assert final.choices[0].finish_reason == "stop"


@SQLITE_ONLY
def test_agent_model_applies_the_agents_prompt_and_parameters(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(
        tenant, model="gpt-4o-mini", system_prompt="You are Ada.", parameters={"temperature": 0.7}
    )
    tag = _tag("agent")
    emu.script(tag, content="Hello from Ada.")
    raw = _client(gateway, tenant.api_key).chat.completions.with_raw_response.create(
        model=f"agent:{agent['id']}", messages=[{"role": "user", "content": tag}]
    )
    assert raw.parse().choices[0].message.content == "Hello from Ada."
    [sent] = emu.requests_matching(tag)
    assert sent.body["messages"][0] == {"role": "system", "content": "You are Ada."}
    assert sent.body["temperature"] == 0.7 and sent.body["model"] == "gpt-4o-mini"
    view = gateway.ended_execution(tenant, raw.headers["x-cb-execution-id"])
    assert view["agent_id"] == agent["id"] and view["kind"] == "chat_completion"

    with pytest.raises(openai.NotFoundError) as missing:
        _client(gateway, tenant.api_key).chat.completions.create(
            model=f"agent:{uuid.uuid4()}", messages=[{"role": "user", "content": "hi"}]
        )
    assert missing.value.body["code"] == "not_found"


@SQLITE_ONLY
def test_errors_raise_the_sdks_typed_exceptions(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    client = _client(gateway, tenant.api_key)
    hello = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        _client(gateway, "cbk_not-a-key").chat.completions.create(model="auto", messages=hello)
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(model="cb:smart-chat", messages=hello, n=2)
    assert many.value.body == {"message": "only n=1 is supported",
                               "type": "invalid_request_error", "param": "n",
                               "code": "invalid_request"}  # fmt: skip
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model="cb:smart-chat", messages=[])
    assert invalid.value.body["param"] == "messages"
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="cb:smart-chat", messages=hello, logprobs=True)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="no-such-model", messages=hello)
    assert unknown.value.body["type"] == "invalid_request_error"
    assert unknown.value.body["code"] == "model_not_found"

    # a provider that keeps failing: a 5xx the SDK would retry, recorded as failed
    emu = gateway.cluster.emulator
    tag = _tag("fail")
    emu.script(tag, status=500)
    with pytest.raises(openai.InternalServerError) as failed:
        client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": tag}]
        )
    execution_id = failed.value.response.headers["x-cb-execution-id"]
    assert gateway.ended_execution(tenant, execution_id)["status"] == "failed"


@SQLITE_ONLY
def test_tenant_limits_apply_with_retry_after(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    limited = gateway.http.put(
        f"/api/v1/admin/tenants/{tenant.id}/limits",
        json={"requests_per_minute": 1},
        headers=gateway.admin,
    )
    assert limited.status_code == 200, limited.text
    client = _client(gateway, tenant.api_key)
    hello = [{"role": "user", "content": _tag("limit")}]
    client.chat.completions.create(model="gpt-4o-mini", messages=hello)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-4o-mini", messages=hello)
    assert int(refused.value.response.headers["retry-after"]) >= 1
    assert refused.value.body["code"] == "rate_limited"


@pytest.mark.parametrize("door", ["chat", "agent"])
@SQLITE_ONLY
def test_a_client_leaving_a_whole_request_cancels_the_upstream_call(
    gateway: ApiClient, door: str
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("cut")
    emu.script(tag, content="too late", delay=8.0)
    url = gateway.cluster.url(gateway.backend)
    if door == "chat":
        url += "/v1/chat/completions"
        body: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": tag}],
        }
    else:
        url += f"/api/v1/agents/{agent['id']}/execute"
        body = {"prompt": tag}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(url, json=body, headers=tenant.headers(), timeout=httpx.Timeout(30, read=1.5))
    deadline = time.monotonic() + 5
    while not (emu.requests_matching(tag) and emu.requests_matching(tag)[0].client_disconnected):
        assert time.monotonic() < deadline, "the upstream request was not closed"
        time.sleep(0.05)
    listed = gateway.http.get("/api/v1/executions", headers=tenant.headers()).json()
    [execution] = listed["executions"]
    view = gateway.ended_execution(tenant, execution["execution_id"])
    assert view["status"] == "cancelled"
    assert view["kind"] == ("chat_completion" if door == "chat" else "agent_execution")
