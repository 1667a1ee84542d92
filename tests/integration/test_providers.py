"""Executions on Anthropic through the gateway: wire format, usage and cost, retries, fallback."""

from __future__ import annotations

import uuid

from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.sse import read_events, stream

pytestmark = SQLITE_ONLY  # provider behaviour: the storage backend cannot change it


def marker() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def test_an_anthropic_agent_gets_a_correct_request_and_a_priced_result(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(
        tenant, model="claude-sonnet-4-6", parameters={"temperature": 1.4, "seed": 3}
    )
    tag = marker()
    emu.script(tag, content=f"Claude says {tag}", prompt_tokens=40, completion_tokens=10)

    reply = gateway.execute(tenant, agent["id"], tag)

    assert reply.status_code == 200, reply.text
    result = reply.json()
    assert result["status"] == "completed"
    assert result["response"]["content"] == f"Claude says {tag}"
    usage = result["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        40,
        10,
        50,
    )
    assert usage["cost_usd"] == round(40 * 3.00 / 1e6 + 10 * 15.00 / 1e6, 10)
    meta = result["metadata"]
    assert meta["provider"] == "anthropic" and meta["model_resolved"] == "claude-sonnet-4-6"
    assert meta["dropped_parameters"] == ["seed"]
    assert meta["adjusted_parameters"] == {"temperature": 1.0}
    sent = emu.requests_matching(tag)[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == "Bearer test-anthropic-key"
    assert sent.body["model"] == "claude-sonnet-4-6"
    assert sent.body["system"] == "You are a helpful assistant."
    assert sent.body["messages"] == [{"role": "user", "content": tag}]
    assert sent.body["max_tokens"] == 64000 and sent.body["temperature"] == 1.0
    assert "seed" not in sent.body
    assert "test-anthropic-key" not in reply.text


def test_an_anthropic_stream_carries_its_text_and_merged_usage(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="claude-haiku-4-5")
    tag = marker()
    pieces = ["Stre", "amed ", "by ", tag]
    emu.script(tag, chunks=pieces, prompt_tokens=17, completion_tokens=6)

    with stream(gateway, tenant, agent["id"], tag) as response:
        events = [e for e in read_events(response) if e["event"] != "heartbeat"]

    assert events[-1]["event"] == "execution_complete", events[-1]
    text = "".join(e["data"]["delta"] for e in events if e["event"] == "content_chunk")
    assert text == "".join(pieces)
    final = events[-1]["data"]
    assert final["usage"]["prompt_tokens"] == 17 and final["usage"]["completion_tokens"] == 6
    assert final["metadata"]["provider"] == "anthropic"
    assert emu.requests_matching(tag)[0].body["stream"] is True


def test_an_overloaded_anthropic_is_retried(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="claude-haiku-4-5")
    tag = marker()
    emu.script(tag, content="after the overload")
    emu.script(tag, status=529, times=1)

    result = gateway.execute(tenant, agent["id"], tag).json()

    assert result["status"] == "completed" and result["metadata"]["attempts"] == 2
    assert [a["error"] for a in result["metadata"]["attempt_log"]] == ["provider_overloaded", None]


def test_openai_rejecting_the_key_falls_back_to_anthropic(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)  # cb:smart-chat: OpenAI models first, then Anthropic
    tag = marker()
    emu.script(tag, content="served by the fallback")
    emu.script(tag, status=401, times=3)  # each OpenAI candidate, once: 401 is not retried

    result = gateway.execute(tenant, agent["id"], tag).json()

    assert result["status"] == "completed", result
    meta = result["metadata"]
    assert meta["fallback_used"] is True and meta["provider"] == "anthropic"
    assert meta["model_resolved"] == "claude-sonnet-4-6"
    assert [r.path for r in emu.requests_matching(tag)] == ["/v1/chat/completions"] * 3 + [
        "/v1/messages"
    ]


def test_an_azure_deployment_is_called_at_its_url_with_its_key(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="azure-gpt-4o-mini")
    tag = marker()
    emu.script(tag, content=f"Azure says {tag}", prompt_tokens=20, completion_tokens=4)

    result = gateway.execute(tenant, agent["id"], tag).json()

    assert result["status"] == "completed", result
    assert result["response"]["content"] == f"Azure says {tag}"
    assert result["metadata"]["provider"] == "azure"
    assert result["usage"]["total_tokens"] == 24
    sent = emu.requests_matching(tag)[0]
    assert sent.path == "/openai/deployments/gpt-4o-mini/chat/completions"
    assert sent.headers["api-key"] == "test-azure-key" and "authorization" not in sent.headers
    assert "model" not in sent.body


def test_an_ollama_model_runs_whole_and_streamed(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="ollama-llama3.2", parameters={"max_tokens": 64})
    tag = marker()
    emu.script(tag, chunks=["Lo", "cal ", tag], prompt_tokens=9, completion_tokens=3)

    whole = gateway.execute(tenant, agent["id"], tag).json()
    with stream(gateway, tenant, agent["id"], tag) as response:
        events = [e for e in read_events(response) if e["event"] != "heartbeat"]

    assert whole["status"] == "completed" and whole["response"]["content"] == f"Local {tag}"
    assert whole["usage"]["total_tokens"] == 12 and whole["usage"]["cost_usd"] == 0
    final = events[-1]["data"]
    assert events[-1]["event"] == "execution_complete", final
    assert final["response"]["content"] == f"Local {tag}"
    assert final["usage"]["prompt_tokens"] == 9 and final["usage"]["completion_tokens"] == 3
    sent = [r.body for r in emu.requests_matching(tag)]
    assert [b["stream"] for b in sent] == [False, True]
    assert sent[0]["options"] == {"num_predict": 64}


def test_a_gemini_model_runs_whole_and_streamed(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gemini-2.5-flash")
    tag = marker()
    emu.script(tag, chunks=["Ge", "mini ", tag], prompt_tokens=30, completion_tokens=5)

    whole = gateway.execute(tenant, agent["id"], tag).json()
    with stream(gateway, tenant, agent["id"], tag) as response:
        events = [e for e in read_events(response) if e["event"] != "heartbeat"]

    assert whole["status"] == "completed" and whole["response"]["content"] == f"Gemini {tag}"
    assert whole["usage"]["cost_usd"] == round(30 * 0.30 / 1e6 + 5 * 2.50 / 1e6, 10)
    assert whole["metadata"]["provider"] == "gemini"
    final = events[-1]["data"]
    assert events[-1]["event"] == "execution_complete", final
    assert final["response"]["content"] == f"Gemini {tag}"
    assert final["usage"]["total_tokens"] == 35
    sent = emu.requests_matching(tag)
    assert [r.path for r in sent] == [
        "/v1/models/gemini-2.5-flash:generateContent",
        "/v1/models/gemini-2.5-flash:streamGenerateContent",
    ]
    assert sent[0].headers["x-goog-api-key"] == "test-gemini-key"
    assert sent[0].body["systemInstruction"] == {
        "parts": [{"text": "You are a helpful assistant."}]
    }
    assert sent[0].body["generationConfig"] == {"temperature": 0.3}
