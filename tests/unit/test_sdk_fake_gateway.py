"""`circuit_breaker.testing.FakeGateway` with the real SDK: `Client` and `AsyncClient` against
the fake over HTTP (REST, SSE with resume and cancel, OpenAI's door, GraphQL), its scripting
(`reply`, `reply_for`, `fail`, `requests`) and the SDK's retry and error mapping on its
answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from circuit_breaker import (
    AsyncClient,
    AuthenticationError,
    Client,
    ContentChunk,
    ExecutionCancelledError,
    ExecutionComplete,
    ExecutionStart,
    InvalidRequestError,
    MissingTenantError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    UsageUpdate,
)
from circuit_breaker.testing import FakeGateway

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    with FakeGateway() as gateway:
        yield gateway


def test_agents_crud_execute_and_history_over_rest(gw: FakeGateway) -> None:
    client = gw.client()
    agent = client.agents.create(
        name="Helper", model="cb:smart-chat", system_prompt="Be brief.", tags=["sdk"]
    )
    assert (agent.model, agent.version, agent.tenant_id) == ("cb:smart-chat", 1, gw.tenant_id)
    assert client.agents.get(agent.id) == agent
    assert [a.id for a in client.agents.list()] == [agent.id]
    updated = client.agents.update(agent.id, description="changed", parameters={"temperature": 0})
    assert (updated.description, updated.parameters, updated.version) == (
        "changed", {"temperature": 0}, 2,
    )  # fmt: skip

    result = client.agents.execute(agent.id, prompt="What is 2 + 2?", metadata={"resource_id": 7})
    assert result.content == "Echo: What is 2 + 2?"
    assert result.status == "completed" and result.surface == "rest"
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.metadata["model_requested"] == "cb:smart-chat"
    record = client.executions.get(result.execution_id)
    assert (record.status, record.content, record.resource_id) == ("completed", result.content, "7")
    page = client.executions.list(agent_id=agent.id, limit=10)
    assert [e.execution_id for e in page.executions] == [result.execution_id]

    sent = gw.requests_to("/execute", "POST")[0]
    assert sent.json == {"prompt": "What is 2 + 2?", "metadata": {"resource_id": 7}}
    assert sent.header("Authorization") == f"Bearer {gw.api_key}"
    assert sent.header("X-Tenant-ID") == gw.tenant_id
    client.agents.delete(agent.id)
    with pytest.raises(NotFoundError):
        client.agents.get(agent.id)
    assert gw.agents == []


def test_a_stream_sends_the_real_events_with_increasing_ids(gw: FakeGateway) -> None:
    gw.reply_for("story", "Once upon a time.", usage={"prompt_tokens": 11, "cost_usd": 0.5})
    client = gw.client()
    agent = client.agents.create(name="Teller", model="cb:creative")
    with client.agents.stream(agent.id, prompt="Tell me a story") as stream:
        events = list(stream)
        final = stream.final()
    assert isinstance(events[0], ExecutionStart) and events[0].model_requested == "cb:creative"
    assert "".join(e.delta for e in events if isinstance(e, ContentChunk)) == "Once upon a time."
    usage = next(e for e in events if isinstance(e, UsageUpdate))
    assert (usage.prompt_tokens, usage.cost_usd, usage.estimated) == (11, 0.5, False)
    assert isinstance(events[-1], ExecutionComplete)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert final.content == "Once upon a time." and final.usage.prompt_tokens == 11
    body = gw.requests_to("/execute/stream")[0].json
    assert body["stream_options"] == {"on_disconnect": "continue"}
    assert client.executions.get(final.execution_id).stream is True


def test_a_dropped_stream_is_resumed_with_last_event_id(gw: FakeGateway) -> None:
    gw.reply("one two three four", cut_after=3)
    client = gw.client()
    agent = client.agents.create(name="R", model="cb:fastest")
    stream = client.agents.stream(agent.id, prompt="go")
    events = list(stream)
    assert stream.resumes == 1
    assert stream.content == "one two three four"
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    resumed = gw.requests_to(f"/executions/{stream.execution_id}/stream")
    assert [r.header("Last-Event-ID") for r in resumed] == ["3"]
    replayed = list(client.executions.resume(stream.execution_id, last_event_id=5))
    assert replayed[0].event_id == 6 and isinstance(replayed[-1], ExecutionComplete)


def test_a_running_stream_can_be_cancelled(gw: FakeGateway) -> None:
    gw.reply("w " * 50, delay=0.02)
    client = gw.client()
    agent = client.agents.create(name="C", model="cb:smart-chat")
    stream = client.agents.stream(agent.id, prompt="long")
    for event in stream:
        if isinstance(event, ContentChunk):
            break
    record = stream.cancel()
    assert record is not None and record.status == "cancelled"
    with pytest.raises(ExecutionCancelledError):
        stream.final()


def test_a_scripted_failure_ends_the_stream_with_its_typed_error(gw: FakeGateway) -> None:
    gw.reply_for("boom", "partial", error_type="provider_timeout")
    client = gw.client()
    agent = client.agents.create(name="F", model="cb:smart-chat")
    stream = client.agents.stream(agent.id, prompt="boom")
    assert [e.type for e in stream][-1] == "error"
    with pytest.raises(ProviderError) as raised:
        stream.final()
    assert raised.value.error_type == "provider_timeout"
    with pytest.raises(ProviderError) as whole:
        client.agents.execute(agent.id, prompt="boom again")
    assert whole.value.status == 504 and whole.value.execution_id
    assert client.executions.get(whole.value.execution_id).status == "failed"


def test_chat_completions_whole_and_streamed_and_models(gw: FakeGateway) -> None:
    gw.reply_for("capital", "Paris.")
    client = gw.client()
    answer = client.chat_completion(
        model="cb:smart-chat", messages=[{"role": "user", "content": "The capital of France?"}]
    )
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == "Paris."
    assert answer["id"].startswith("chatcmpl-")
    with httpx.stream(
        "POST", f"{gw.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {gw.api_key}"},
        json={"model": "cb:fastest", "stream": True, "stream_options": {"include_usage": True},
              "messages": [{"role": "user", "content": "capital?"}]},
    ) as reply:  # fmt: skip
        lines = [line for line in reply.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Paris."
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0
    models = httpx.get(f"{gw.url}/v1/models").json()  # public without a key, as the gateway
    assert models["object"] == "list" and "cb:smart-chat" in {m["id"] for m in models["data"]}
    assert any(m.id == "cb:smart-chat" for m in client.models.list())
    client.models.list()
    assert client.models.cache.revalidated == 1  # the ETag answered 304


def test_graphql_queries_mutations_and_the_graphql_surface(gw: FakeGateway) -> None:
    client = gw.client()
    created = client.graphql.query(
        "mutation($input: AgentDefinitionInput!) { createAgent(input: $input) { id name } }",
        {"input": {"name": "G", "description": "", "capabilities": [], "tools": [],
                   "llmProvider": {"providerType": "openai", "model": "cb:coding", "apiKey": ""},
                   "llmConfig": {"temperature": 0.1, "stopSequences": []},
                   "prompts": {"system": "Code.", "userTemplate": ""}}},
    )["createAgent"]  # fmt: skip
    agent = client.agents.get(created["id"])
    assert (agent.name, agent.model, agent.system_prompt) == ("G", "cb:coding", "Code.")
    listed = client.graphql.query("{ agents { id llmConfig { temperature } } }")["agents"]
    assert listed == [{"id": agent.id, "llmConfig": {"temperature": 0.1}}]

    result = client.agents.execute(agent.id, prompt="hi")
    ext = client.graphql.agent(agent.id)
    assert ext.execution_endpoints.stream.endswith(f"/agents/{agent.id}/execute/stream")
    assert ext.streaming_config.resumable and ext.virtual_model_mappings[0].name == "cb:coding"
    assert [e.id for e in ext.execution_history or []] == [result.execution_id]
    node = client.graphql.query(
        "query($id: String!) { agentExecution(id: $id) { status outputData } }",
        {"id": result.execution_id},
    )["agentExecution"]
    assert node["status"] == "COMPLETED" and node["outputData"]["content"] == "Echo: hi"

    over_graphql = gw.client(mode="graphql")
    executed = over_graphql.agents.execute(agent.id, prompt="via graphql")
    assert (executed.surface, executed.content) == ("graphql", "Echo: via graphql")
    assert over_graphql.executions.get(executed.execution_id).status == "completed"
    assert all(r.path == "/graphql" for r in gw.requests[-2:])


def test_injected_errors_map_to_sdk_retries_and_typed_exceptions(
    gw: FakeGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = gw.client()
    agent = client.agents.create(name="E", model="cb:smart-chat")

    gw.fail(429, "rate_limited", retry_after=0, path="/execute")
    assert client.agents.execute(agent.id, prompt="retried").content == "Echo: retried"
    assert len(gw.requests_to("/execute")) == 2  # refused at admission: the SDK sent it again

    gw.fail(429, "rate_limited", retry_after=7, times=5)
    with pytest.raises(RateLimitError) as limited:
        gw.client(max_retries=0).agents.execute(agent.id, prompt="refused")
    assert (limited.value.retry_after, limited.value.details) == (
        7.0, {"limit": "requests_per_minute"},
    )  # fmt: skip
    gw.reset()

    agent = client.agents.create(name="E2", model="cb:smart-chat")
    gw.fail(502, "provider_error", path="/execute")
    with pytest.raises(ProviderError) as failed:
        client.agents.execute(agent.id, prompt="ran and failed")
    assert failed.value.execution_id  # recorded, so never sent again
    assert len(gw.requests_to("/execute")) == 1

    gw.fail(503, "service_unavailable", path=f"/api/v1/agents/{agent.id}", method="GET")
    assert client.agents.get(agent.id).id == agent.id  # answered over GraphQL instead
    assert client.mode == "graphql"

    with pytest.raises(AuthenticationError) as refused:
        Client(gw.url, gw.tenant_id, "cbk_wrong", max_retries=0).agents.list()
    assert refused.value.status == 401
    assert refused.value.body["error"]["type"] == "authentication_failed"
    monkeypatch.delenv("CB_TENANT_ID", raising=False)  # no tenant from the environment either
    with pytest.raises(MissingTenantError):
        Client(gw.url, None, gw.api_key).agents.list()


async def test_the_async_client_against_the_fake(gw: FakeGateway) -> None:
    gw.reply("async answer")
    async with gw.async_client() as client:
        assert isinstance(client, AsyncClient)
        agent = await client.agents.create(name="A", model="cb:smart-chat")
        assert (await client.agents.execute(agent.id, prompt="x")).content == "async answer"
        stream = client.agents.stream(agent.id, prompt="y")
        kinds = [event.type async for event in stream]
        assert kinds[0] == "execution_start" and kinds[-1] == "execution_complete"
        assert (await stream.final()).content == "async answer"
        data = await client.graphql.query("{ agentList { totalCount } health }")
        assert data == {"agentList": {"totalCount": 1}, "health": "ok"}
        gw.fail(429, "rate_limited", retry_after=0)
        assert len(await client.agents.list()) == 1


def test_data_subjects_are_listed_exported_and_erased(gw: FakeGateway) -> None:
    gw.reply_for("secret", "the answer")
    client = gw.client()
    agent = client.agents.create(name="S", model="cb:smart-chat")
    subject = "user/42"  # a "/" must travel escaped
    first = client.agents.execute(agent.id, prompt="my secret", subject=subject)
    streamed = client.agents.stream(agent.id, prompt="streamed secret", subject=subject).final()
    chat = client.chat_completion(
        model=f"agent:{agent.id}", user=subject,
        messages=[{"role": "user", "content": "chat secret"}],
    )  # fmt: skip
    other = client.agents.execute(agent.id, prompt="someone else's", subject="user-7")
    client.agents.execute(agent.id, prompt="nobody's")
    assert gw.requests_to("/execute", "POST")[0].json == {"prompt": "my secret", "subject": subject}
    assert gw.requests_to("/subjects/") == []

    listed = client.subjects.list(subject)
    assert gw.requests[-1].path == "/api/v1/subjects/user%2F42"
    ids = [e["execution_id"] for e in listed["executions"]]
    assert ids[1:] == [streamed.execution_id, first.execution_id]  # newest first
    assert ids[0].replace("-", "") == chat["id"].removeprefix("chatcmpl-")  # OpenAI's `user`
    assert len(listed["subject_ref"]) == 32 and other.execution_id not in ids
    oldest = listed["executions"][-1]
    assert oldest["input"] == {"prompt": "my secret"}
    assert oldest["response"]["content"] == "the answer" and "payload" not in oldest

    lines = client.subjects.export(subject)
    executions = [line for line in lines if line["kind"] == "execution"]
    events = [line for line in lines if line["kind"] == "event"]
    assert [line["data"]["execution_id"] for line in executions] == ids
    assert {e["aggregate_id"] for e in events} == set(ids)
    assert events[0]["topic"] == "execution_start" and events[0]["version"] == 1

    erased = client.subjects.erase(subject)
    hours = {int(e["started_at"] // 3600) for e in listed["executions"]}  # a key per hour
    assert erased == {
        "subject_ref": listed["subject_ref"], "executions": 3, "keys_destroyed": len(hours),
    }  # fmt: skip
    assert client.subjects.erase(subject)["keys_destroyed"] == 0  # nothing left to destroy
    after = client.subjects.list(subject)["executions"]
    assert all(e["payload"] == "erased" and e["input"] == {"erased": True} for e in after)
    assert {e["response"]["content"] for e in after} == {"[erased]"}
    record = client.executions.get(first.execution_id)
    assert (record.payload, record.content, record.usage.total_tokens) == (
        "erased", "[erased]", first.usage.total_tokens,
    )  # fmt: skip
    assert all(line["data"] == {"erased": True} for line in client.subjects.export(subject)
               if line["kind"] == "event")  # fmt: skip
    assert client.executions.get(other.execution_id).payload is None  # another subject's

    later = client.agents.execute(agent.id, prompt="new secret", subject=subject)
    assert client.subjects.list(subject)["executions"][0]["execution_id"] == later.execution_id
    assert client.executions.get(later.execution_id).content == "the answer"  # a new key
    over_graphql = gw.client(mode="graphql").agents.execute(agent.id, prompt="p", subject=subject)
    assert gw.requests[-1].json["variables"]["input"]["user"] == subject
    newest = client.subjects.list(subject)["executions"][0]
    assert newest["execution_id"] == over_graphql.execution_id
    assert newest["kind"] == "chat_completion"
    with pytest.raises(InvalidRequestError):
        client.agents.execute(agent.id, prompt="x", subject="")


def test_retention_is_kept_and_checked(gw: FakeGateway) -> None:
    client = gw.client()
    assert client.retention.get() == {"retention": None}
    assert client.retention.set(30) == {"retention": {"payload_days": 30, "metrics_days": None}}
    assert gw.requests[-1].json == {"payload_days": 30, "metrics_days": None}
    assert client.retention.set(7, metrics_days=365)["retention"]["metrics_days"] == 365
    assert client.retention.get() == {"retention": {"payload_days": 7, "metrics_days": 365}}
    with pytest.raises(InvalidRequestError):
        client.retention.set(30, metrics_days=10)  # metrics must outlive payloads
    with pytest.raises(InvalidRequestError):
        client.retention.set(0)
    assert client.retention.clear() == {"retention": None}
    assert client.retention.get() == {"retention": None}
    assert [r.method for r in gw.requests_to("/api/v1/retention")] == [
        "GET", "PUT", "PUT", "GET", "PUT", "PUT", "DELETE", "GET",
    ]  # fmt: skip


async def test_the_async_client_erases_a_subject(gw: FakeGateway) -> None:
    async with gw.async_client() as client:
        agent = await client.agents.create(name="A", model="cb:smart-chat")
        ran = await client.agents.execute(agent.id, prompt="p", subject="s-1")
        listed = await client.subjects.list("s-1")
        assert [e["execution_id"] for e in listed["executions"]] == [ran.execution_id]
        assert (await client.subjects.erase("s-1"))["executions"] == 1
        assert (await client.executions.get(ran.execution_id)).payload == "erased"
        retention = await client.retention.set(1)
        assert retention == {"retention": {"payload_days": 1, "metrics_days": None}}


def test_the_packaged_schema_is_the_served_one() -> None:
    packaged = ROOT / "sdk" / "python" / "circuit_breaker" / "schema.graphql"
    served = ROOT / "api" / "graphql" / "schema.graphql"
    assert packaged.read_text() == served.read_text(), "cp api/graphql/schema.graphql " + str(
        packaged.relative_to(ROOT)
    )


def test_feedback_is_checked_recorded_and_erased_with_its_subject(gw: FakeGateway) -> None:
    client = gw.client()
    agent = client.agents.create(name="F", model="cb:smart-chat")
    done = client.agents.execute(agent.id, prompt="rate me", subject="u1")
    given = client.executions.feedback(done.execution_id, True, label="good", comment="mine")
    assert (given["score"], given["label"], given["source"]) == (1.0, "good", "user")
    client.executions.feedback(done.execution_id, 0.5, source="app")
    with pytest.raises(InvalidRequestError):
        client.executions.feedback(done.execution_id, 1.5)
    record = client.executions.get(done.execution_id)
    shown = record.model_dump()
    assert shown["quality"] == {"mean_score": 0.75, "scored": 2}
    assert [f["comment"] for f in shown["feedback"]] == ["mine", None]
    client.subjects.erase("u1")
    erased = client.executions.get(done.execution_id).model_dump()
    assert [f["comment"] for f in erased["feedback"]] == ["[erased]", None]
    assert client.judge.set("cb:fastest", rubric="format", sample_rate=0.1)["judge"]["rubric"] == (
        "format"
    )
    with pytest.raises(InvalidRequestError):
        client.judge.set("cb:fastest", rubric="vibes")
    assert client.judge.clear() == {"judge": None}
