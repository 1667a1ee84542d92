"""GraphQL subscriptions without Ray: the messages they send, the cost feed's cursor, where
a WebSocket's credentials come from, and the whole app over fake actors (a live stream's
channel is closed when its subscriber stops or goes away; the per-connection bound)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from typing import Any

from starlette.testclient import TestClient

from actors.stream_channel import HEADER
from api.graphql.execution_events import end_event, parse_sse
from api.graphql.websocket import MAX_SUBSCRIPTIONS, credentials
from domain.keys import hash_key
from domain.legacy_feeds import LATE_FOLD_S, CostCursor, cost_update, llm_stream_message
from domain.sse import comment, frame_batch
from tests.unit.test_api_runtime import KEY, TENANT, FakeActor, build

EXECUTION = "subscription($id: String!) { agentExecutionStream(executionId: $id) }"
COSTS = "subscription { costUpdates }"


def _events(execution_id: str) -> list[dict[str, Any]]:
    return [
        {"id": 1, "event": "execution_start", "data": {"execution_id": execution_id}},
        {"id": 2, "event": "content_chunk", "data": {"execution_id": execution_id, "delta": "Hi"}},
        {"id": 3, "event": "usage_update", "data": {"total_tokens": 3}},
        {
            "id": 4,
            "event": "execution_complete",
            "data": {"execution_id": execution_id, "response": {"content": "Hi"}},
        },
    ]


def test_sse_bytes_read_back_into_the_events_they_frame() -> None:
    events = [*_events("e1"), {"event": "error", "data": {"type": "x", "message": "a\nb"}}]
    data = comment("heartbeat") + frame_batch(events[:2]) + comment("hb") + frame_batch(events[2:])
    assert parse_sse(data) == events


def test_llm_stream_messages_carry_the_answer_and_end_finished() -> None:
    events = _events("e1")
    sent = [llm_stream_message("r1", e, 0.0, chunks_sent=i > 1) for i, e in enumerate(events)]
    assert sent == [
        None,
        {"id": "r1", "content": "Hi", "finished": False, "timestamp": "1970-01-01T00:00:00Z"},
        None,
        {"id": "r1", "content": "", "finished": True, "timestamp": "1970-01-01T00:00:00Z"},
    ]
    # an execution that was not streamed: its one event carries the whole answer
    whole = llm_stream_message("r1", events[-1], 0.0, chunks_sent=False)
    assert whole is not None and (whole["content"], whole["finished"]) == ("Hi", True)
    failed = {"event": "error", "data": {"type": "provider_error", "message": "down", "x": 1}}
    message = llm_stream_message("r1", failed, 0.0, chunks_sent=True)
    assert message is not None and message["finished"]
    assert message["error"] == {"type": "provider_error", "message": "down"}


def test_the_end_of_an_unstreamed_execution_is_one_terminal_event() -> None:
    completed = {
        "execution_id": "e1",
        "agent_id": "a1",
        "status": "completed",
        "response": {"content": "ok"},
        "usage": {},
        "metadata": {},
        "error": None,
    }
    assert end_event(completed)["event"] == "execution_complete"
    assert end_event(completed)["data"]["response"] == {"content": "ok"}
    failed = {**completed, "status": "failed", "error": {"type": "timeout", "message": "slow"}}
    assert end_event(failed) == {
        "event": "error",
        "data": {"type": "timeout", "message": "slow", "execution_id": "e1"},
    }


def _ended(execution_id: str, at: float, cost: float = 0.5) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "agent_id": "a1",
        "kind": "agent_execution",
        "status": "completed",
        "completed_at": at,
        "model_resolved": "m",
        "provider": "p",
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3, "cost_usd": cost},
    }


def test_the_cost_cursor_sends_each_end_once_in_order_even_when_folded_late() -> None:
    cursor = CostCursor(since=100.0)
    assert cursor.ask_from() == 100.0
    # ended before the subscription: never sent
    assert cursor.take([_ended("old", 99.0), _ended("e1", 101.0)]) == [_ended("e1", 101.0)]
    assert cursor.ask_from() == max(100.0, 101.0 - LATE_FOLD_S)
    # asked again from a moment before the newest: what was sent is not sent again, and an
    # end folded late (earlier than the newest sent) still comes once
    again = [_ended("e1", 101.0), _ended("late", 100.5), _ended("e2", 102.0)]
    assert [e["execution_id"] for e in cursor.take(again)] == ["late", "e2"]
    assert cursor.take(again) == []
    # far later: the ids remembered are only those within the late-fold window
    cursor.take([_ended("e9", 200.0)])
    assert cursor.ask_from() == 200.0 - LATE_FOLD_S and set(cursor._sent) == {"e9"}


def test_a_cost_update_is_the_legacy_document() -> None:
    assert cost_update(_ended("e1", 0.0, cost=0.25), "u1") == {
        "userId": "u1",
        "projectId": "a1",
        "cost": 0.25,
        "timestamp": "1970-01-01T00:00:00Z",
        "details": {
            "executionId": "e1",
            "kind": "agent_execution",
            "status": "completed",
            "model": "m",
            "provider": "p",
            "promptTokens": 1,
            "completionTokens": 2,
            "totalTokens": 3,
        },
    }


def test_socket_credentials_come_from_the_payload_before_the_headers() -> None:
    headers = {"x-tenant-id": "t-header", "authorization": "Bearer header-key"}
    assert credentials(None, headers) == ("t-header", "Bearer header-key")
    assert credentials({}, {}) == (None, None)
    payload = {"Authorization": "Bearer payload-key", "X-Tenant-ID": "t-payload"}
    assert credentials(payload, headers) == ("t-payload", "Bearer payload-key")
    nested = {"headers": {"authorization": "Bearer nested"}}
    assert credentials(nested, headers) == ("t-header", "Bearer nested")
    assert credentials({"apiKey": "k", "tenantId": "t"}, {}) == ("t", "Bearer k")
    assert credentials({"token": 7, "tenant_id": "t"}, {}) == ("t", None)  # not a string


class _Channel:
    """A tenant actor's stream channel as the ingress meets it: takes the token, sends one
    message of events, then holds the connection open until the ingress closes it."""

    def __init__(self, events: list[dict[str, Any]], drop: bool = False) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.message = frame_batch(events)
        self.drop = drop  # hang up after the message, as a tenant actor that died
        self.closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def offer(self) -> dict[str, Any]:
        return {"value": {"host": "127.0.0.1", "port": self.port, "token": "t0"}}

    def _serve(self) -> None:
        connection, _ = self.server.accept()
        with connection:
            connection.recv(64)  # the token line
            connection.sendall(HEADER.pack(len(self.message)) + self.message)
            while not self.drop and connection.recv(1024):
                pass
        self.closed.set()


def _app(tenant: FakeActor, executions: dict[str, dict[str, Any]]) -> Any:
    record = {
        "tenant_id": TENANT,
        "key_id": "k1",
        "scopes": ["executions:read", "analytics:read"],
        "revoked": False,
        "expires_at": None,
    }
    projection = FakeActor(
        lookup_key=lambda key_hash: {"value": record if key_hash == hash_key(KEY) else None},
        record_security=lambda entries: {"value": None},
        get_execution=lambda tenant_id, execution_id: {"value": executions.get(execution_id)},
        list_executions=lambda tenant_id, filters: {"value": []},
    )
    return build(tenant, projection)


def _init(ws: Any, protocol: str) -> None:
    ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {KEY}"}})
    assert ws.receive_json()["type"] == "connection_ack"
    if protocol == "graphql-ws":
        assert ws.receive_json()["type"] == "ka"


def test_a_live_stream_is_let_go_when_its_subscriber_stops_or_leaves() -> None:
    ids = [str(uuid.uuid4()) for _ in range(2)]
    channels = {i: _Channel(_events(i)[:2]) for i in ids}
    tenant = FakeActor(resume_stream=lambda execution_id, after: channels[execution_id].offer())
    app = _app(tenant, {i: {"execution_id": i, "stream": True, "status": "running"} for i in ids})
    with TestClient(app) as http:
        for execution_id, leave in zip(ids, (False, True), strict=True):
            with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
                _init(ws, "graphql-transport-ws")
                payload = {"query": EXECUTION, "variables": {"id": execution_id}}
                ws.send_json({"type": "subscribe", "id": "s1", "payload": payload})
                got = [ws.receive_json() for _ in range(2)]
                assert [m["type"] for m in got] == ["next", "next"]
                assert '"delta":"Hi"' in got[1]["payload"]["data"]["agentExecutionStream"]
                if not leave:  # the client stops the subscription; the socket stays open
                    ws.send_json({"type": "complete", "id": "s1"})
                    assert channels[execution_id].closed.wait(5)
            assert channels[execution_id].closed.wait(5)  # gone with the socket


def test_subscriptions_on_one_connection_are_bounded() -> None:
    with TestClient(_app(FakeActor(), {})) as http:
        with http.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as ws:
            _init(ws, "graphql-ws")
            for n in range(MAX_SUBSCRIPTIONS + 1):
                ws.send_json({"type": "start", "id": str(n), "payload": {"query": COSTS}})
            refused = ws.receive_json()
            while refused["type"] == "ka":
                refused = ws.receive_json()
            assert refused == {
                "type": "error",
                "id": str(MAX_SUBSCRIPTIONS),
                "payload": {"message": "Subscription limit reached"},
            }


def test_a_stream_whose_runtime_went_away_goes_on_from_the_store() -> None:
    execution_id = str(uuid.uuid4())
    events = _events(execution_id)
    channel = _Channel(events[:2], drop=True)
    offers = iter([channel.offer(), {"value": {"events": events[2:]}}])
    tenant = FakeActor(resume_stream=lambda execution_id, after: next(offers))
    app = _app(tenant, {execution_id: {"execution_id": execution_id, "stream": True}})
    with TestClient(app) as http:
        with http.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
            _init(ws, "graphql-transport-ws")
            payload = {"query": EXECUTION, "variables": {"id": execution_id}}
            ws.send_json({"type": "subscribe", "id": "s1", "payload": payload})
            got = [ws.receive_json() for _ in range(len(events) + 1)]
    sent = [json.loads(m["payload"]["data"]["agentExecutionStream"]) for m in got[:-1]]
    assert sent == events and got[-1] == {"id": "s1", "type": "complete"}
    assert [args for _, args in tenant.calls] == [(execution_id, 0), (execution_id, 2)]
