"""Streamed executions over SSE: ordered events, live chunks, terminal errors, disconnects."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.sse import read_events, stream


def test_stream_sends_ordered_events_and_the_whole_result(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"s-{uuid.uuid4().hex[:8]}"
    pieces = ["Hel", "lo, ", "wor", "ld ", tag]
    emu.script(tag, chunks=pieces, prompt_tokens=21, completion_tokens=5)

    with stream(gateway, tenant, agent["id"], tag) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["x-accel-buffering"] == "no"
        events = [e for e in read_events(response) if e["event"] != "heartbeat"]

    kinds = [e["event"] for e in events]
    assert kinds[0] == "execution_start" and kinds[-1] == "execution_complete"
    assert "usage_update" in kinds
    assert [e["id"] for e in events] == list(range(1, len(events) + 1))
    start = events[0]["data"]
    assert start["model_requested"] == "cb:smart-chat" and start["model_resolved"] == "gpt-4.1-mini"
    deltas = "".join(e["data"]["delta"] for e in events if e["event"] == "content_chunk")
    assert deltas == "".join(pieces)
    final = events[-1]["data"]
    assert final["status"] == "completed" and final["response"]["content"] == deltas
    assert final["usage"]["prompt_tokens"] == 21 and final["usage"]["completion_tokens"] == 5
    assert final["usage"]["cost_usd"] > 0
    sent = emu.requests_matching(tag)[0].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    history = gateway.http.get(
        f"/api/v1/executions/{final['execution_id']}", headers=tenant.headers()
    ).json()
    assert history["status"] == "completed" and history["stream"] is True
    assert history["response"]["content"] == deltas


def test_failure_before_the_first_chunk_is_retried_invisibly(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"r-{uuid.uuid4().hex[:8]}"
    emu.script(tag, chunks=["fine ", tag])
    emu.script(tag, status=503, times=1)
    with stream(gateway, tenant, agent["id"], tag) as response:
        events = read_events(response)
    assert events[-1]["event"] == "execution_complete"
    assert not [e for e in events if e["event"] == "error"]
    assert len(emu.requests_matching(tag)) == 2


def test_failure_after_the_first_chunk_ends_with_an_error_event(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"f-{uuid.uuid4().hex[:8]}"
    emu.script(tag, chunks=["one ", "two ", "three ", tag], fail_after_chunks=2)
    with stream(gateway, tenant, agent["id"], tag) as response:
        events = [e for e in read_events(response) if e["event"] != "heartbeat"]
    assert events[-1]["event"] == "error"
    error = events[-1]["data"]
    assert error["type"] == "provider_error" and error["execution_id"]
    assert len(emu.requests_matching(tag)) == 1  # not retried after content went out
    history = gateway.http.get(
        f"/api/v1/executions/{error['execution_id']}", headers=tenant.headers()
    ).json()
    assert history["status"] == "failed"
    assert history["response"]["content"] == "one two "


def test_a_refused_stream_is_a_plain_json_error(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    with stream(gateway, tenant, str(uuid.uuid4()), "hi") as response:
        response.read()
        assert response.status_code == 404
        assert response.json()["error"]["type"] == "not_found"


@SQLITE_ONLY
def test_heartbeats_keep_an_idle_stream_alive(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"h-{uuid.uuid4().hex[:8]}"
    emu.script(tag, chunks=["slow ", tag], delay=2.0)
    with stream(gateway, tenant, agent["id"], tag, stream_options={"heartbeat_s": 0.5}) as response:
        events = read_events(response)
    assert sum(e["event"] == "heartbeat" for e in events) >= 2
    assert events[-1]["event"] == "execution_complete"


def test_disconnect_cancels_upstream_and_records_cancelled(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"d-{uuid.uuid4().hex[:8]}"
    emu.script(tag, chunks=[f"w{i} " for i in range(40)] + [tag], chunk_delay=0.1)
    execution_id = None
    with stream(gateway, tenant, agent["id"], tag) as response:
        for line in response.iter_lines():
            if line.startswith("data: ") and execution_id is None:
                execution_id = json.loads(line[6:])["execution_id"]
            if line.startswith("event: content_chunk"):
                break  # the client leaves after the first chunk
    deadline = time.monotonic() + 5
    seen = emu.requests_matching(tag)
    while not seen[0].client_disconnected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen[0].client_disconnected, "the upstream request was not closed"
    history = gateway.ended_execution(tenant, execution_id)
    assert history["status"] == "cancelled"
    assert history["response"]["content"].startswith("w0 ")


def test_two_tenants_streaming_at_once_see_only_their_own_events(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    runs = []
    for name in ("A", "B"):
        tenant = gateway.new_tenant(name)
        agent = gateway.new_agent(tenant)
        tag = f"{name}-{uuid.uuid4().hex[:8]}"
        emu.script(tag, chunks=[f"{name}{i} " for i in range(10)] + [tag], chunk_delay=0.02)
        runs.append({"tenant": tenant, "agent": agent, "tag": tag})

    def consume(run: dict[str, Any]) -> None:
        with stream(gateway, run["tenant"], run["agent"]["id"], run["tag"]) as response:
            run["events"] = [e for e in read_events(response) if e["event"] != "heartbeat"]

    threads = [threading.Thread(target=consume, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for run, other in ((runs[0], runs[1]), (runs[1], runs[0])):
        events = run["events"]
        execution_id = events[0]["data"]["execution_id"]
        assert events[-1]["event"] == "execution_complete"
        assert {e["data"]["execution_id"] for e in events} == {execution_id}
        text = "".join(e["data"]["delta"] for e in events if e["event"] == "content_chunk")
        assert run["tag"] in text and other["tag"] not in text


@SQLITE_ONLY
def test_a_stream_cancelled_by_id_ends_for_its_reader_and_upstream(gateway: ApiClient) -> None:
    """`POST /api/v1/executions/{id}/cancel`: what an SDK calls to cancel a stream it keeps
    resumable (`on_disconnect: continue`), so closing the connection alone does not cancel."""
    emu = gateway.cluster.emulator
    tenant, other = gateway.new_tenant(), gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"c-{uuid.uuid4().hex[:8]}"
    emu.script(tag, chunks=[f"w{i} " for i in range(40)] + [tag], chunk_delay=0.1)
    body = {"stream_options": {"on_disconnect": "continue"}}
    with stream(gateway, tenant, agent["id"], tag, **body) as response:
        lines = response.iter_lines()
        execution_id = next(json.loads(x[6:]) for x in lines if x.startswith("data: "))[
            "execution_id"
        ]
        next(x for x in lines if x.startswith("event: content_chunk"))
        path = f"/api/v1/executions/{execution_id}/cancel"
        assert gateway.http.post(path, headers=other.headers()).status_code == 404
        cancelled = gateway.http.post(path, headers=tenant.headers())
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        rest = [x for x in lines if x.startswith("event: ")]
    assert rest[-1] == "event: error"  # the reader's stream ends, with the cancellation
    assert emu.requests_matching(tag)[0].client_disconnected, "the upstream call went on"
    again = gateway.http.post(path, headers=tenant.headers())  # idempotent
    assert again.status_code == 200 and again.json()["status"] == "cancelled"

    done = gateway.execute(tenant, agent["id"], "hello").json()
    ended = gateway.http.post(
        f"/api/v1/executions/{done['execution_id']}/cancel", headers=tenant.headers()
    )
    assert ended.status_code == 409 and ended.json()["error"]["type"] == "conflict"
    assert "completed" in ended.json()["error"]["message"]
