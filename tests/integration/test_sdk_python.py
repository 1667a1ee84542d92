"""The Python SDK (`sdk/python`, import `circuit_breaker`) against the real test cluster:
every method, a stream cut mid-way by the test and resumed, a stream cancelled, failover to
GraphQL when REST answers 503 (and back), and retries that honour the tenant's real
`Retry-After`."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from circuit_breaker import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    ContentChunk,
    Error,
    ExecutionCancelledError,
    ExecutionComplete,
    ExecutionStart,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UsageUpdate,
    legacy,
)

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant


def _client(gateway: ApiClient, tenant: Tenant, **options: Any) -> Client:
    options.setdefault("api_key", tenant.api_key)
    return Client(base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id, **options)


@SQLITE_ONLY
def test_every_method_of_the_sync_client(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("SDK")
    tag = f"sdk-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, chunks=["hello ", tag])
    keys = iter([tenant.api_key] * 1000)
    client = _client(gateway, tenant, api_key=lambda: next(keys))  # a callable key

    # agents
    agent = client.agents.create(
        name="Helper", model="cb:smart-chat", system_prompt="Be brief.", tags=["sdk"]
    )
    assert agent.id and agent.name == "Helper" and agent.tags == ["sdk"]
    assert client.agents.get(agent.id).system_prompt == "Be brief."
    assert agent.id in [a.id for a in client.agents.list()]
    changed = client.agents.update(agent.id, description="changed", parameters={"temperature": 0})
    assert changed.description == "changed" and changed.version == agent.version + 1

    # execute, executions
    result = client.agents.execute(agent.id, prompt=f"say {tag}", metadata={"resource_id": "r1"})
    assert result.content == f"hello {tag}" and result.usage.total_tokens > 0
    assert result.execution_id and result.surface == "rest"
    found = client.executions.get(result.execution_id)
    assert found.status == "completed" and found.content == result.content
    assert found.resource_id == "r1"
    page = client.executions.list(agent_id=agent.id, limit=10)
    assert [e.execution_id or e.id for e in page.executions] == [result.execution_id]

    # stream: typed events, the final result, then a replay from an id
    stream = client.agents.stream(agent.id, prompt=f"stream {tag}")
    events = list(stream)
    assert isinstance(events[0], ExecutionStart) and isinstance(events[-1], ExecutionComplete)
    assert [e.event_id for e in events] == list(range(1, len(events) + 1))
    assert "".join(e.delta for e in events if isinstance(e, ContentChunk)) == f"hello {tag}"
    assert any(isinstance(e, UsageUpdate) for e in events)
    assert stream.final().content == f"hello {tag}" == stream.content
    replay = client.executions.resume(stream.execution_id, last_event_id=2)
    assert [e.event_id for e in replay] == [e.event_id for e in events[2:]]
    with client.agents.stream(agent.id, prompt=f"closed {tag}") as early:
        assert next(iter(early)).type == "execution_start"  # closing mid-way ends the stream

    # models with the ETag cache
    models = client.models.list()
    assert any(m.id == "cb:smart-chat" and m.kind == "virtual" for m in models)
    etag = client.models.cache.etag
    assert etag and client.models.list() == models and client.models.cache.revalidated == 1
    assert client.models.get("cb:smart-chat") is not None
    concrete = next(m.id for m in models if m.kind == "concrete")
    mapping = client.models.set_mapping("my-model", candidates=[concrete], strategy="balanced")
    assert mapping.name == "my-model"
    assert "my-model" in [m.name for m in client.models.list_mappings()]
    assert client.models.cache.etag == etag or True  # the list may change with the mapping
    assert any(m.id == "my-model" for m in client.models.list())
    client.models.delete_mapping("my-model")
    assert isinstance(client.models.set_policy(parameter_caps={"max_tokens": 500}), dict)
    assert client.models.get_policy()["parameter_caps"] == {"max_tokens": 500}

    # tools, MCP servers, providers
    assert "mortgage_calculator" in [t.name for t in client.tools.list()]
    server = client.mcp_servers.create(
        name="nowhere", transport="http", url="http://127.0.0.1:9/mcp", timeout_s=2
    )
    assert server.health and server.health["status"] == "failed"
    assert [s.id for s in client.mcp_servers.list()] == [server.id]
    assert isinstance(client.mcp_servers.refresh(server.id), dict)
    client.mcp_servers.delete(server.id)
    assert client.mcp_servers.list() == []
    assert client.providers.list()

    # analytics, budgets, audit
    assert "rows" in client.analytics.usage(group_by="agent")
    assert "models" in client.analytics.models()
    assert "errors" in client.analytics.errors()
    assert client.analytics.usage(format="csv").startswith(("executions", "group", "\ufeff", ""))
    budget = client.budgets.set("tenant", limit_usd=25.0, period="day")
    assert budget.limit_usd == 25.0 and budget.period == "day"
    assert client.budgets.get("tenant").remaining_usd is not None
    assert [b.scope for b in client.budgets.list()] == ["tenant"]
    assert client.budgets.delete("tenant")["removed"] is True
    feed = client.budgets.events(heartbeat_s=0.5)
    assert [next(feed).type, next(feed).type] == ["budget_set", "budget_removed"]
    feed.close()
    kinds = {e.kind for e in client.audit.list(limit=100)}
    assert {"agent.created", "agent.updated", "budget.set"} <= kinds

    # GraphQL: raw, the extension fields, legacy operations, a subscription
    assert client.graphql.query("{ health }")["health"]
    ext = client.graphql.agent(agent.id)
    assert ext.tenant_id == tenant.id and ext.streaming_config.resumable
    assert ext.execution_endpoints.execute.endswith(f"/api/v1/agents/{agent.id}/execute")
    assert ext.virtual_model_mappings and ext.virtual_model_mappings[0].name == "cb:smart-chat"
    assert {e.id for e in ext.execution_history or []} >= {result.execution_id}
    listed = client.graphql.agent_list(filter={"name": "help"})
    assert listed["totalCount"] == 1 and listed["agents"][0].id == agent.id
    chat = client.graphql.llm_chat_completion(
        "cb:smart-chat", [{"role": "user", "content": f"legacy {tag}"}]
    )
    assert chat["choices"][0]["message"]["content"] == f"hello {tag}"
    assert client.graphql.llm_providers()
    status = client.graphql.set_budget(limit=10.0, period="monthly", warning_threshold=0.5)
    assert status.limit == 10.0 and client.graphql.budget_status().budget_id == "tenant"
    today = datetime.now(UTC).date()
    costs = client.graphql.cost_analytics(
        start_date=str(today - timedelta(days=1)), end_date=str(today + timedelta(days=1))
    )
    assert costs["totalTokens"] > 0
    replayed = list(client.graphql.execution_stream(stream.execution_id))
    assert [e.type for e in replayed] == [e.type for e in events]

    # OpenAI door and errors
    completion = client.chat_completion(
        model="cb:smart-chat", messages=[{"role": "user", "content": f"door {tag}"}]
    )
    assert completion["choices"][0]["message"]["content"] == f"hello {tag}"
    client.agents.delete(agent.id)
    with pytest.raises(NotFoundError) as missing:
        client.agents.get(agent.id)
    assert missing.value.status == 404 and missing.value.error_type == "not_found"
    with pytest.raises(AuthenticationError):
        _client(gateway, tenant, api_key="cbk_wrong").agents.list()
    client.close()


@SQLITE_ONLY
def test_legacy_helpers_run_on_the_new_client(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Legacy")
    tag = f"legacy-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, content=f"old {tag}")
    client = _client(gateway, tenant)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        definition = (
            legacy.create_agent("Old")
            .set_model(legacy.COMMON_MODELS.SMART_BALANCED)
            .set_system_prompt("You are old.")
            .set_temperature(0.2)
            .build()
        )
        agent = legacy.agents(client).create(definition)
        assert agent.name == "Old" and agent.model == "cb:smart-chat"
        assert agent.parameters["temperature"] == 0.2
        llm = legacy.llm(client)
        assert llm.chat(legacy.COMMON_MODELS.SMART_BALANCED, f"hi {tag}") == f"old {tag}"
        request = legacy.create_smart_chat("cb:smart-chat").add_user_message(f"q {tag}").build()
        assert llm.chat_completion(request)["choices"][0]["message"]["content"] == f"old {tag}"
        assert legacy.create_chat("cb:smart-chat").add_user_message(tag).execute(llm) == (
            f"old {tag}"
        )
        status = legacy.set_budget(client, 40.0, "monthly")
        assert status.limit == 40.0 and legacy.budget_status(client).limit == 40.0
    deprecated = {
        str(w.message).split(" is deprecated")[0]
        for w in caught
        if issubclass(w.category, DeprecationWarning)
    }
    assert {
        "circuit_breaker.legacy.create_agent",
        "circuit_breaker.legacy.LLM.chat",
        "circuit_breaker.legacy.set_budget",
    } <= deprecated, deprecated


class _DropAfter(httpx.BaseTransport):
    """Passes requests to the real transport, and cuts the first streamed execution's
    connection after `events` SSE events (a `ReadError`, as a dropped connection gives)."""

    def __init__(self, events: int) -> None:
        self.inner = httpx.HTTPTransport()
        self.events = events
        self.cut = 0
        self.paths: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.paths.append(request.url.path)
        if not request.url.path.endswith("/execute/stream") or self.cut:
            return response
        self.cut += 1
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Cut(response, self.events),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self.inner.close()


class _Cut(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, events: int) -> None:
        self.response = response
        self.events = events

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self.response.stream:
            for frame in chunk.split(b"\n\n"):
                if not frame.strip():
                    continue
                yield frame + b"\n\n"
                if not frame.startswith(b":"):
                    seen += 1
                if seen >= self.events:
                    raise httpx.ReadError("connection dropped by the test")

    def close(self) -> None:
        self.response.close()


@SQLITE_ONLY
def test_a_stream_cut_midway_resumes_without_loss_or_duplication(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Resume")
    agent = gateway.new_agent(tenant)
    tag = f"cut-{uuid.uuid4().hex[:8]}"
    pieces = [f"p{i} " for i in range(16)] + [tag]
    gateway.cluster.emulator.script(tag, chunks=pieces, chunk_delay=0.08)
    transport = _DropAfter(events=5)
    client = _client(gateway, tenant, transport=transport)
    stream = client.agents.stream(agent["id"], prompt=tag)
    events = list(stream)
    assert transport.cut == 1 and stream.resumes == 1
    assert any(p.endswith(f"/executions/{stream.execution_id}/stream") for p in transport.paths)
    ids = [e.event_id for e in events]
    assert ids == list(range(1, len(events) + 1)), ids  # no gap, no duplicate
    assert stream.content == "".join(pieces) == stream.final().content
    # the whole stream as the server recorded it is what the client got
    full = list(_client(gateway, tenant).executions.resume(stream.execution_id))
    assert [(e.event_id, e.type) for e in full] == [(e.event_id, e.type) for e in events]


def _upstream_cut(gateway: ApiClient, tag: str) -> bool:
    """The emulator saw the gateway close its request for `tag` (within 5 s)."""
    emu, deadline = gateway.cluster.emulator, time.monotonic() + 5
    while not emu.requests_matching(tag)[0].client_disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    return emu.requests_matching(tag)[0].client_disconnected


@SQLITE_ONLY
def test_cancel_ends_a_resumable_stream_and_its_upstream_call(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Cancel")
    agent = gateway.new_agent(tenant)
    tag = f"cancel-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, chunks=[f"w{i} " for i in range(40)] + [tag],
                                    chunk_delay=0.1)  # fmt: skip
    client = _client(gateway, tenant)
    assert client.agents.stream(agent["id"], prompt=tag).cancel() is None  # never read: no run
    stream = client.agents.stream(agent["id"], prompt=tag)  # on_disconnect: continue
    seen: list[str] = []
    for event in stream:
        seen.append(event.type)
        if isinstance(event, ContentChunk):
            record = stream.cancel()
    assert seen == ["execution_start", "content_chunk"]  # the iteration ended there
    assert record is not None and record.status == "cancelled"
    assert record.execution_id == stream.execution_id
    assert client.executions.get(stream.execution_id).status == "cancelled"
    assert _upstream_cut(gateway, tag), "the upstream call went on"
    with pytest.raises(ExecutionCancelledError):
        stream.final()
    assert client.executions.cancel(stream.execution_id).status == "cancelled"  # idempotent

    done = client.agents.execute(agent["id"], prompt="hello")
    with pytest.raises(ConflictError) as refused:
        client.executions.cancel(done.execution_id)
    assert refused.value.status == 409 and "completed" in refused.value.message
    with pytest.raises(NotFoundError):
        _client(gateway, gateway.new_tenant()).executions.cancel(stream.execution_id)


@SQLITE_ONLY
async def test_an_async_stream_cancelled_while_another_task_reads_it(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Cancel async")
    agent = gateway.new_agent(tenant)
    tag = f"acancel-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, chunks=[f"w{i} " for i in range(40)] + [tag],
                                    chunk_delay=0.1)  # fmt: skip
    async with AsyncClient(
        base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id, api_key=tenant.api_key
    ) as client:
        stream = client.agents.stream(agent["id"], prompt=tag)
        first_chunk = asyncio.Event()

        async def read() -> list[Any]:
            events = []
            async for event in stream:
                events.append(event)
                if isinstance(event, ContentChunk):
                    first_chunk.set()
            return events

        reader = asyncio.create_task(read())
        await asyncio.wait_for(first_chunk.wait(), 10)
        record = await stream.cancel()
        assert record is not None and record.status == "cancelled"
        events = await asyncio.wait_for(reader, 10)  # the reader's stream ended by itself
        last = events[-1]
        assert isinstance(last, Error) and last.error_type == "execution_cancelled", last
        with pytest.raises(ExecutionCancelledError):
            await stream.final()
        with pytest.raises(ConflictError):
            done = await client.agents.execute(agent["id"], prompt="hello")
            await client.executions.cancel(done.execution_id)
    assert _upstream_cut(gateway, tag), "the upstream call went on"


class _RestDown(httpx.AsyncBaseTransport):
    """The real transport, but `/api/` answers 503 while `down` is set (a REST outage)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.down = True

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.down and request.url.path.startswith("/api/"):
            return httpx.Response(503, headers={"Retry-After": "1"}, text="upstream down")
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@SQLITE_ONLY
async def test_failover_to_graphql_when_rest_answers_503_and_back(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Failover")
    tag = f"fo-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, content=f"via graphql {tag}")
    transport = _RestDown()
    options: dict[str, Any] = {
        "base_url": gateway.cluster.url(gateway.backend),
        "tenant_id": tenant.id,
        "api_key": tenant.api_key,
        "transport": transport,
    }
    async with AsyncClient(**options, failover_cooldown=0.5) as client:
        assert client.mode == "rest" and client.pinned_mode == "auto"
        agent = await client.agents.create(name="Failing over", model="cb:smart-chat",
                                           system_prompt="Answer.")  # fmt: skip
        assert client.mode == "graphql" and client.failovers[0][0] == "graphql"
        assert (await client.agents.get(agent.id)).system_prompt == "Answer."
        assert agent.id in [a.id for a in await client.agents.list()]
        updated = await client.agents.update(agent.id, description="over GraphQL")
        assert updated.description == "over GraphQL"
        result = await client.agents.execute(agent.id, prompt=f"run {tag}")
        assert result.surface == "graphql" and result.content == f"via graphql {tag}"
        assert result.usage.total_tokens > 0 and result.execution_id
        execution = await client.executions.get(result.execution_id)
        assert execution.status == "completed" and execution.content == result.content
        with pytest.raises(ServiceUnavailableError):  # REST only: no GraphQL half
            await client.budgets.list()
        assert client.mode == "graphql"

        transport.down = False  # REST is back: after the cooldown it serves again
        await asyncio.sleep(0.6)
        assert (await client.agents.get(agent.id)).id == agent.id
        assert client.mode == "rest"
        async for event in client.agents.stream(agent.id, prompt=f"again {tag}"):
            last = event
        assert last.type == "execution_complete"
        await client.agents.delete(agent.id)
        with pytest.raises(NotFoundError):
            await client.agents.get(agent.id)

    transport = _RestDown()
    async with AsyncClient(**{**options, "transport": transport}, mode="rest",
                           max_retries=0) as pinned:  # fmt: skip
        with pytest.raises(ServiceUnavailableError) as refused:
            await pinned.agents.list()
        assert refused.value.status == 503 and pinned.mode == "rest"
    async with AsyncClient(**{**options, "transport": None}, mode="graphql") as on_graphql:
        assert on_graphql.mode == "graphql"
        agent = await on_graphql.agents.create(name="Pinned", model="cb:smart-chat")
        assert (await on_graphql.agents.execute(agent.id, prompt=tag)).surface == "graphql"
        assert (await on_graphql.budgets.list()) == []  # REST-only operations still work


@SQLITE_ONLY
def test_retries_honour_retry_after_from_the_tenants_rate_limit(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Limited")
    agent = gateway.new_agent(tenant)
    limits = gateway.http.put(
        f"/api/v1/admin/tenants/{tenant.id}/limits",
        json={"requests_per_minute": 30, "burst": 1},  # one every 2 s
        headers=gateway.admin,
    )
    assert limits.status_code == 200, limits.text
    impatient = _client(gateway, tenant, max_retries=0)
    impatient.agents.execute(agent["id"], prompt="first")
    with pytest.raises(RateLimitError) as refused:
        impatient.agents.execute(agent["id"], prompt="second")
    assert refused.value.status == 429 and refused.value.retry_after
    assert refused.value.execution_id is None
    wait = refused.value.retry_after

    sent: list[tuple[float, int, str | None]] = []  # when, status, Retry-After

    class Recording(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            sent.append((time.monotonic(), response.status_code,
                         response.headers.get("retry-after")))  # fmt: skip
            return response

    patient = _client(gateway, tenant, max_retries=3, transport=Recording())
    result = patient.agents.execute(agent["id"], prompt="third")  # 429, waits, then runs
    assert result.status == "completed"
    assert [status for _, status, _ in sent][-1] == 200 and sent[0][1] == 429
    for (at, status, retry_after), (next_at, _, _) in itertools.pairwise(sent):
        assert status == 429 and retry_after is not None
        assert next_at - at >= float(retry_after) * 0.99, (next_at - at, retry_after)
    assert wait > 0


@SQLITE_ONLY
async def test_an_async_stream_resumes_after_a_heartbeat_timeout(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Heartbeat")
    agent = gateway.new_agent(tenant)
    tag = f"hb-{uuid.uuid4().hex[:8]}"
    pieces = [f"s{i} " for i in range(4)] + [tag]
    gateway.cluster.emulator.script(tag, chunks=pieces, chunk_delay=0.6)
    async with AsyncClient(
        base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id, api_key=tenant.api_key
    ) as client:
        # the server's heartbeat every 5 s, the client's patience 0.25 s: every pause between
        # chunks is a silent connection, given up and resumed
        stream = client.agents.stream(
            agent["id"], prompt=tag, heartbeat_s=5, heartbeat_timeout=0.25
        )
        events = [event async for event in stream]
        assert stream.resumes >= 2
        assert [e.event_id for e in events] == list(range(1, len(events) + 1))
        assert stream.content == "".join(pieces) == (await stream.final()).content
        # the same events over a GraphQL subscription (graphql-transport-ws)
        replayed = [e async for e in client.graphql.execution_stream(stream.execution_id)]
        assert [(e.event_id, e.type) for e in replayed] == [(e.event_id, e.type) for e in events]
        ext = await client.graphql.agent(agent["id"])
        assert ext.execution_history and ext.execution_history[0].id == stream.execution_id
        assert (await client.models.get("cb:smart-chat")) is not None
        assert [m.name for m in await client.models.list_mappings()] == []


@SQLITE_ONLY
async def test_feedback_judges_and_experiments_through_both_clients(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("SDK quality")
    tag = uuid.uuid4().hex[:10]
    gateway.cluster.emulator.script(f"Rubric {tag}.", content='{"score": 0.7, "reason": "ok"}')
    client = _client(gateway, tenant)
    agent = client.agents.create(name="Q", model="gpt-4o-mini")
    done = client.agents.execute(agent.id, prompt=f"quality {tag}")
    given = client.executions.feedback(done.execution_id, True, label="good", comment="nice")
    assert (given["score"], given["label"], given["source"]) == (1.0, "good", "user")
    judge = {"model": "gpt-4o-mini", "rubric": "relevance", "criteria": f"Rubric {tag}."}
    verdict = client.executions.judge(done.execution_id, **judge)
    assert verdict["score"] == 0.7 and verdict["judge"]["model"] == "gpt-4o-mini"
    assert client.judge.set(**judge, sample_rate=0.0)["judge"]["sample_rate"] == 0.0
    assert client.judge.get()["judge"]["criteria"] == f"Rubric {tag}."
    assert client.judge.clear() == {"judge": None}
    with pytest.raises(NotFoundError):
        client.executions.feedback(str(uuid.uuid4()), 0.5)

    started = client.experiments.create(
        name="sdk", source={"agent_id": agent.id}, variants=[{"name": "b", "model": "speedy-b"}]
    )
    report = client.experiments.wait(started["id"], timeout_s=60, poll_s=0.2)
    assert report["status"] == "completed" and report["variants"][0]["runs"] == 1
    assert [e["id"] for e in client.experiments.list()] == [started["id"]]
    with pytest.raises(ConflictError):
        client.experiments.cancel(started["id"])
    client.close()

    async with AsyncClient(base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id,
                           api_key=tenant.api_key) as aclient:  # fmt: skip
        scored = await aclient.executions.feedback(done.execution_id, 0.25, source="app")
        assert scored["source"] == "app"
        again = await aclient.experiments.get(started["id"])
        assert again["sources"][0]["execution_id"] == done.execution_id
        assert (await aclient.judge.get()) == {"judge": None}
    record = gateway.ended_execution(tenant, done.execution_id)
    assert [f["source"] for f in record["feedback"]] == ["user", "judge", "app"]


@SQLITE_ONLY
async def test_collaborations_through_both_clients(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("SDK collaborations")
    tag = uuid.uuid4().hex[:10]
    gateway.cluster.emulator.script(f"first {tag}", content=f"one {tag}")
    client = _client(gateway, tenant)
    agent = client.agents.create(name="C", model="gpt-4o-mini")
    steps = [
        {"id": "first", "agent_id": agent.id, "input": f"first {tag}"},
        {"id": "second", "model": "gpt-4o-mini", "depends_on": ["first"],
         "input": "second {{steps.first.output}}"},
    ]  # fmt: skip
    saved = client.collaborations.create(name="sdk", steps=steps)
    assert saved["version"] == 1 and saved["output"] == "second"
    run = client.collaborations.run(saved["id"])
    assert run["status"] == "completed" and gateway.cluster.emulator.requests_matching(
        f"second one {tag}"
    )
    assert client.collaborations.update(saved["id"], description="v2")["version"] == 2
    assert [c["id"] for c in client.collaborations.list()] == [saved["id"]]
    assert client.collaborations.get_run(run["run_id"])["output"] == run["output"]
    assert [r["run_id"] for r in client.collaborations.list_runs(status="completed")] == [
        run["run_id"]
    ]
    with pytest.raises(ConflictError):
        client.collaborations.cancel_run(run["run_id"])
    with pytest.raises(InvalidRequestError):
        client.collaborations.create(name="bad", steps=[{**steps[1], "depends_on": ["x"]}])
    client.close()

    async with AsyncClient(base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id,
                           api_key=tenant.api_key) as aclient:  # fmt: skip
        inline = await aclient.collaborations.run(
            definition={"name": "inline", "steps": steps}, inputs={}
        )
        assert inline["collaboration_id"] is None and inline["status"] == "completed"
        assert len(await aclient.collaborations.list_runs()) == 2
        await aclient.collaborations.delete(saved["id"])
        with pytest.raises(NotFoundError):
            await aclient.collaborations.get(saved["id"])
