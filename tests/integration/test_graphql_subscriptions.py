"""GraphQL subscriptions over WebSocket through Ray Serve, with a real client library (gql)
speaking both protocols: `graphql-transport-ws` and the legacy `graphql-ws`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from typing import Any

import pytest
import websockets
from gql import Client, GraphQLRequest
from gql.transport.exceptions import TransportQueryError
from gql.transport.websockets import WebsocketsTransport

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.graphql import graphql
from tests.support.sse import iter_events, stream

STANDARD = WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL  # graphql-transport-ws
LEGACY = WebsocketsTransport.APOLLO_SUBPROTOCOL  # graphql-ws
EXECUTION = "subscription Run($id: String!) { agentExecutionStream(executionId: $id) }"
LLM = "subscription LLMStream($id: String!) { llmStream(requestId: $id) }"
COSTS = "subscription CostUpdates($user: String) { costUpdates(userId: $user) }"
CHAT = """mutation Chat($input: LlmChatCompletionInput!) {
  llmChatCompletion(input: $input) { id choices { message { content } } }
}"""


def _url(gateway: ApiClient) -> str:
    return gateway.cluster.url(gateway.backend).replace("http://", "ws://", 1) + "/graphql"


def _credentials(tenant: Tenant, key: str | None = None) -> dict[str, str]:
    """The tenant's credentials as a browser sends them: in the `connection_init` payload."""
    return {"Authorization": f"Bearer {key or tenant.api_key}", "X-Tenant-ID": tenant.id}


async def _subscribe(
    gateway: ApiClient,
    protocol: str,
    query: str,
    variables: dict[str, Any],
    headers: dict[str, str] | None = None,
    payload: dict[str, Any] | None = None,
    count: int | None = None,
) -> list[tuple[float, Any]]:
    """Each message (JSON-decoded) with when it arrived, until the subscription completes
    (or `count` messages came)."""
    transport = WebsocketsTransport(
        url=_url(gateway), headers=headers, init_payload=payload or {}, subprotocols=[protocol]
    )
    got: list[tuple[float, Any]] = []
    async with Client(transport=transport) as session:
        request = GraphQLRequest(query, variable_values=variables)
        async for result in session.subscribe(request):
            [value] = result.values()
            got.append((time.monotonic(), json.loads(value)))
            if count is not None and len(got) == count:
                break
    return got


def _comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Events without the timings only the live answer has."""
    out = []
    for e in events:
        data = dict(e["data"])
        if e["event"] == "execution_complete":
            data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "timings_ms"}
        out.append((e.get("id"), e["event"], data))
    return out


class _SseReader:
    """Starts a streamed execution over SSE and reads it in the background."""

    def __init__(self, gateway: ApiClient, tenant: Tenant, agent_id: str, prompt: str) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended_at = 0.0
        self._thread = threading.Thread(target=self._read, args=(gateway, tenant, agent_id, prompt))
        self._thread.start()

    def _read(self, gateway: ApiClient, tenant: Tenant, agent_id: str, prompt: str) -> None:
        with stream(gateway, tenant, agent_id, prompt) as response:
            for event in iter_events(response):
                if event["event"] != "heartbeat":
                    self.events.append(event)
        self.ended_at = time.monotonic()

    async def execution_id(self) -> str:
        deadline = time.monotonic() + 20
        while not self.events:
            assert time.monotonic() < deadline, "the stream never started"
            await asyncio.sleep(0.02)
        return self.events[0]["data"]["execution_id"]

    async def join(self) -> list[dict[str, Any]]:
        await asyncio.to_thread(self._thread.join, 60)
        return self.events


@SQLITE_ONLY
async def test_a_streamed_execution_live_on_both_protocols_then_replayed(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    agent = await asyncio.to_thread(gateway.new_agent, tenant)
    tag = f"ws-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(
        tag, chunks=[f"w{i} " for i in range(12)] + [tag], chunk_delay=0.15
    )
    sse = _SseReader(gateway, tenant, agent["id"], tag)
    execution_id = await sse.execution_id()
    variables = {"id": execution_id}
    live, chunks = await asyncio.gather(
        _subscribe(gateway, STANDARD, EXECUTION, variables, headers=tenant.headers()),
        _subscribe(gateway, LEGACY, LLM, variables, payload=_credentials(tenant)),
    )
    full = await sse.join()
    assert full[-1]["event"] == "execution_complete"
    # the same events as SSE, in order, each once; the first came while the run went on
    assert _comparable([m for _, m in live]) == _comparable(full)
    assert live[0][0] < sse.ended_at and live[-1][1]["event"] == "execution_complete"
    # llmStream: the answer piece by piece, then `finished`
    messages = [m for _, m in chunks]
    answer = full[-1]["data"]["response"]["content"]
    assert "".join(m["content"] for m in messages) == answer and tag in answer
    assert [m["finished"] for m in messages] == [False] * (len(messages) - 1) + [True]
    assert {m["id"] for m in messages} == {execution_id}
    assert all(m["timestamp"].endswith("Z") for m in messages)
    # a chat completion streamed by `llmChatCompletion`: its pieces, replayed by its id
    chat = f"chat-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(chat, chunks=["one ", "two ", chat])
    variables_chat = {
        "input": {
            "model": "cb:smart-chat",
            "stream": True,
            "messages": [{"role": "user", "content": chat}],
        }
    }
    completion = await asyncio.to_thread(graphql, gateway, tenant.headers(), CHAT, **variables_chat)
    done = completion["data"]["llmChatCompletion"]
    pieces = await _subscribe(gateway, STANDARD, LLM, {"id": done["id"]}, headers=tenant.headers())
    assert [m["content"] for _, m in pieces] == ["one ", "two ", chat, ""]
    assert (
        pieces[-1][1]["finished"] and done["choices"][0]["message"]["content"] == f"one two {chat}"
    )
    # once it has ended: replayed from the store, on either protocol
    replayed = await _subscribe(gateway, LEGACY, EXECUTION, variables, payload=_credentials(tenant))
    assert _comparable([m for _, m in replayed]) == _comparable(full)


@SQLITE_ONLY
async def test_cost_updates_unstreamed_replay_and_tenant_isolation(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent_a = await asyncio.to_thread(gateway.new_agent, a)
    agent_b = await asyncio.to_thread(gateway.new_agent, b)
    costs_a = asyncio.create_task(
        _subscribe(gateway, STANDARD, COSTS, {"user": "user-7"}, headers=a.headers(), count=1)
    )
    costs_b = asyncio.create_task(
        _subscribe(gateway, LEGACY, COSTS, {}, payload=_credentials(b), count=1)
    )
    await asyncio.sleep(1.5)  # both subscribed before the executions end
    done_a = await asyncio.to_thread(gateway.execute, a, agent_a["id"], "cost of A")
    assert done_a.status_code == 200, done_a.text
    result_a = done_a.json()
    [(_, update_a)] = await asyncio.wait_for(costs_a, 20)
    assert update_a["userId"] == "user-7" and update_a["projectId"] == agent_a["id"]
    assert update_a["details"]["executionId"] == result_a["execution_id"]
    assert update_a["cost"] == pytest.approx(result_a["usage"]["cost_usd"]) and update_a["cost"] > 0
    assert update_a["details"]["totalTokens"] == result_a["usage"]["total_tokens"]
    assert update_a["timestamp"].endswith("Z")
    # B's feed: B's own execution, never A's before it
    done_b = await asyncio.to_thread(gateway.execute, b, agent_b["id"], "cost of B")
    [(_, update_b)] = await asyncio.wait_for(costs_b, 20)
    assert update_b["details"]["executionId"] == done_b.json()["execution_id"]
    assert update_b["userId"] == b.id  # no userId given: the tenant
    # an execution that was not streamed: its end, as one event
    [(_, end)] = await _subscribe(
        gateway, STANDARD, EXECUTION, {"id": result_a["execution_id"]}, headers=a.headers()
    )
    assert end["event"] == "execution_complete"
    assert end["data"]["response"]["content"] == result_a["response"]["content"]
    [(_, whole)] = await _subscribe(
        gateway, LEGACY, LLM, {"id": result_a["execution_id"]}, payload=_credentials(a)
    )
    assert whole["finished"] and whole["content"] == result_a["response"]["content"]
    # another tenant's execution, an unknown one and a malformed id are not found
    for protocol, owner, execution_id in (
        (STANDARD, b, result_a["execution_id"]),
        (LEGACY, b, result_a["execution_id"]),
        (STANDARD, a, str(uuid.uuid4())),
        (LEGACY, a, "not-an-id"),
    ):
        with pytest.raises(TransportQueryError, match="not found"):
            await _subscribe(
                gateway, protocol, EXECUTION, {"id": execution_id}, payload=_credentials(owner)
            )


async def _refused(
    gateway: ApiClient, protocol: str, init: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, str, list[dict]]:
    """Connect, send `connection_init`: the close code, its reason and what came before."""
    async with websockets.connect(
        _url(gateway), subprotocols=[protocol], additional_headers=headers
    ) as socket:
        await socket.send(json.dumps({"type": "connection_init", "payload": init}))
        before = []
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                before.append(json.loads(await asyncio.wait_for(socket.recv(), 10)))
    frame = closed.value.rcvd
    assert frame is not None
    return frame.code, frame.reason, before


@SQLITE_ONLY
async def test_refused_credentials_close_the_socket_with_the_reason(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    bad = {"Authorization": "Bearer cbk_not-a-key", "X-Tenant-ID": a.id}
    code, reason, before = await _refused(gateway, STANDARD, {}, headers=bad)
    assert (code, reason, before) == (4401, "Unauthorized: invalid API key", [])
    code, reason, before = await _refused(gateway, LEGACY, {})  # no credential at all
    assert code == 4401 and "Authorization" in reason
    assert before[0]["type"] == "connection_error"
    assert before[0]["payload"]["extensions"]["code"] == "authentication_failed"
    # A's key for B: forbidden, and in both tenants' audit trails
    code, reason, _ = await _refused(gateway, STANDARD, _credentials(b, key=a.api_key))
    assert code == 4403 and "does not belong" in reason
    deadline = time.monotonic() + 10
    while True:
        trail = gateway.http.get(
            "/api/v1/audit", params={"kind": "cross_tenant_attempt"}, headers=a.headers()
        ).json()["entries"]
        if trail or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert trail and trail[0]["detail"]["path"] == "/graphql"
    # a subscription before the connection is acknowledged: 4401
    async with websockets.connect(_url(gateway), subprotocols=[STANDARD]) as socket:
        await socket.send(json.dumps({"type": "subscribe", "id": "1", "payload": {"query": COSTS}}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # a key without the scope: connected, and the subscription is refused saying which
    reader = gateway.http.post(
        f"/api/v1/admin/tenants/{a.id}/api-keys",
        json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    ).json()
    with pytest.raises(TransportQueryError, match="executions:read"):
        await _subscribe(
            gateway,
            STANDARD,
            EXECUTION,
            {"id": str(uuid.uuid4())},
            payload=_credentials(a, key=reader["api_key"]),
        )
    with pytest.raises(TransportQueryError, match="analytics:read"):
        await _subscribe(gateway, LEGACY, COSTS, {}, payload=_credentials(a, key=reader["api_key"]))
    # HTTP on the same path is as before
    reply = gateway.http.post("/graphql", json={"query": "{ agents { id } }"}, headers=a.headers())
    assert reply.status_code == 200 and reply.json()["data"] == {"agents": []}
