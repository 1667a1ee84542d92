"""A tenant actor killed mid-execution: the execution runs again as a new attempt (when no
tool with effects outside was called), the whole-request client gets its answer, a streaming
or resuming client gets `attempt_restarted` and the new attempt, and a resume after any
delivered id is exact."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from circuit_breaker import AttemptRestarted, Client

from domain.attempts import ATTEMPT_ID_SPAN
from tests.integration.test_resume import Watcher, comparable, resume, slow_stream
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.mcp_http import RecordingMcpServer
from tests.support.sse import iter_events, stream


def _in_background(call: Callable[[], httpx.Response]) -> Callable[[], httpx.Response]:
    result: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: result.update(reply=call()))
    worker.start()

    def reply() -> httpx.Response:
        worker.join(timeout=60)
        return result["reply"]

    return reply


def _wait_for_requests(gateway: ApiClient, tag: str, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(gateway.cluster.emulator.requests_matching(tag)) < count:
        assert time.monotonic() < deadline, "the provider was never called"
        time.sleep(0.02)


def _audited_restarts(gateway: ApiClient, tenant: Tenant, execution_id: str) -> list[Any]:
    deadline = time.monotonic() + 10
    while True:
        entries = gateway.http.get("/api/v1/audit", headers=tenant.headers()).json()["entries"]
        found = [
            e
            for e in entries
            if e["kind"] == "execution.attempt_restarted" and e["target"] == execution_id
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


@pytest.mark.parametrize("door", ["execute", "execute_keyed", "chat_completions"])
def test_a_crash_mid_execution_runs_it_again_and_the_client_gets_the_answer(
    gateway: ApiClient, door: str
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = f"attempt-{uuid.uuid4().hex[:8]}"
    emu.script(tag, content="the second attempt's answer", prompt_tokens=11, completion_tokens=4)
    emu.script(tag, content="never delivered", delay=3.0, times=1)
    if door.startswith("execute"):
        key = {"Idempotency-Key": tag} if door == "execute_keyed" else {}
        path = f"/api/v1/agents/{agent['id']}/execute"
        held = _in_background(
            lambda: gateway.http.post(
                path, json={"prompt": tag}, headers={**tenant.headers(), **key}
            )
        )
    else:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": tag}]}
        auth = {"Authorization": f"Bearer {tenant.api_key}"}
        held = _in_background(
            lambda: gateway.http.post("/v1/chat/completions", json=body, headers=auth)
        )
    _wait_for_requests(gateway, tag, 1)
    gateway.kill_tenant_actor(tenant)

    reply = held()
    assert reply.status_code == 200, reply.text
    assert reply.headers["x-cb-attempt"] == "2"
    if door.startswith("execute"):
        execution_id = reply.json()["execution_id"]
        assert reply.json()["response"]["content"] == "the second attempt's answer"
    else:
        execution_id = reply.headers["x-cb-execution-id"]
        assert reply.json()["choices"][0]["message"]["content"] == "the second attempt's answer"
    assert len(emu.requests_matching(tag)) == 2  # the first attempt's call, then the new one

    history = gateway.ended_execution(tenant, execution_id)
    assert history["status"] == "completed"
    assert history["usage"]["total_tokens"] == 15  # what the answering attempt used
    [restarted] = _audited_restarts(gateway, tenant, execution_id)
    assert restarted["detail"]["attempt"] == 2
    assert restarted["detail"]["reason"]["type"] == "execution_interrupted"


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[RecordingMcpServer]:
    with RecordingMcpServer() as server:
        yield server


@SQLITE_ONLY
def test_a_crash_after_a_tool_with_outside_effects_is_never_run_again(
    gateway: ApiClient, mcp_server: RecordingMcpServer
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    registered = gateway.http.post(
        "/api/v1/mcp/servers",
        json={"name": "outside", "transport": "http", "url": mcp_server.url},
        headers=tenant.headers(),
    )
    assert registered.status_code == 201, registered.text
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["add"])
    tag = f"effects-{uuid.uuid4().hex[:8]}"
    emu.script(tag, content="too late", delay=3.0)
    emu.script(tag, tool_calls=[{"name": "add", "arguments": {"a": 2, "b": 40}}], times=1)
    calls_before = len(mcp_server.posts_of("tools/call"))
    held = _in_background(lambda: gateway.execute(tenant, agent["id"], tag))
    _wait_for_requests(gateway, tag, 2)  # the tool was called; the answer is being held
    gateway.kill_tenant_actor(tenant)

    reply = held()
    assert reply.status_code == 503, reply.text
    error = reply.json()["error"]
    assert error["type"] == "execution_interrupted"
    assert len(emu.requests_matching(tag)) == 2  # not called a third time
    assert len(mcp_server.posts_of("tools/call")) == calls_before + 1  # the tool ran once
    history = gateway.ended_execution(tenant, error["execution_id"])
    assert history["status"] == "failed"
    assert history["error"]["type"] == "execution_interrupted"


def _split_at_restart(
    events: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    at = next(i for i, e in enumerate(events) if e["event"] == "attempt_restarted")
    return events[:at], events[at:]


def _content(events: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["delta"] for e in events if e["event"] == "content_chunk")


def test_a_crash_mid_stream_restarts_the_execution_in_the_same_stream(
    gateway: ApiClient,
) -> None:
    tenant, agent_id, tag = slow_stream(gateway, chunks=30, delay=0.05)
    original = Watcher(stream(gateway, tenant, agent_id, tag))
    original.wait_for(8)  # with checkpoints every 0.2 s, some are in the store
    gateway.kill_tenant_actor(tenant)
    seen = original.join()
    assert original.error is None
    execution_id = seen[0]["data"]["execution_id"]
    assert not [e for e in seen if e["event"] == "error"], seen[-3:]

    first, second = _split_at_restart(seen)
    assert [e["id"] for e in first] == list(range(1, len(first) + 1))
    assert [e["id"] for e in second] == list(
        range(ATTEMPT_ID_SPAN + 1, ATTEMPT_ID_SPAN + len(second) + 1)
    )
    assert second[0]["data"]["attempt"] == 2
    assert second[0]["data"]["reason"]["type"] == "execution_interrupted"
    assert second[1]["event"] == "execution_start"
    assert second[-1]["event"] == "execution_complete"
    expected = "".join(f"c{i} " for i in range(30)) + tag
    assert _content(second) == expected  # the new attempt's answer, whole
    assert second[-1]["data"]["response"]["content"] == expected
    assert len(gateway.cluster.emulator.requests_matching(tag)) == 2

    # a resume after any id the client holds is exact: nothing of the new attempt is missed
    for after in (first[-1]["id"], second[0]["id"], second[4]["id"]):
        replayed = resume(gateway, tenant, execution_id, after).join()
        assert comparable(replayed) == comparable([e for e in second if e["id"] > after])
    replayed = resume(gateway, tenant, execution_id, 0).join()
    kept, again = _split_at_restart(replayed)
    assert comparable(kept) == comparable(first[: len(kept)])  # what the store had of it
    assert comparable(again) == comparable(second)


def test_a_client_resuming_an_interrupted_stream_gets_the_new_attempt(
    gateway: ApiClient,
) -> None:
    tenant, agent_id, tag = slow_stream(gateway, chunks=30, delay=0.05)
    options = {"stream_options": {"on_disconnect": "continue"}}
    with stream(gateway, tenant, agent_id, tag, **options) as response:
        events = (e for e in iter_events(response) if e["event"] != "heartbeat")
        seen = [next(events) for _ in range(6)]  # then the client goes away; it runs on
    execution_id = seen[0]["data"]["execution_id"]
    delivered = max(e.get("id", 0) for e in seen)
    gateway.kill_tenant_actor(tenant)

    resumed = resume(gateway, tenant, execution_id, delivered).join()
    assert resumed[0]["event"] == "attempt_restarted" and resumed[0]["data"]["attempt"] == 2
    assert resumed[0]["id"] == ATTEMPT_ID_SPAN + 1
    assert resumed[-1]["event"] == "execution_complete"
    assert _content(resumed) == "".join(f"c{i} " for i in range(30)) + tag
    history = gateway.ended_execution(tenant, execution_id)
    assert history["status"] == "completed"


@SQLITE_ONLY
def test_the_python_sdk_keeps_only_the_answering_attempts_content(gateway: ApiClient) -> None:
    tenant, agent_id, tag = slow_stream(gateway, chunks=30, delay=0.05)
    client = Client(
        base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id, api_key=tenant.api_key
    )
    stream = client.agents.stream(agent_id, prompt=tag)
    events = []
    for event in stream:
        events.append(event)
        if len(events) == 8:
            gateway.kill_tenant_actor(tenant)
    [restarted] = [e for e in events if isinstance(e, AttemptRestarted)]
    assert restarted.attempt == 2 and restarted.event_id == ATTEMPT_ID_SPAN + 1
    expected = "".join(f"c{i} " for i in range(30)) + tag
    assert stream.content == expected == stream.final().content  # the void attempt's text left out
    assert stream.resumes == 0  # the gateway carried the stream across the crash
