"""The Python SDK's pure parts: SSE parsing, typed events, backoff, retry and failover
decisions, error mapping (no server; the whole SDK against the real cluster is
tests/integration/test_sdk_python.py)."""

from __future__ import annotations

import json
import random
import warnings

import httpx
import pytest
from circuit_breaker import (
    BudgetExceededError,
    ContentChunk,
    Error,
    ExecutionComplete,
    NotFoundError,
    OverloadedError,
    ProviderTimeoutError,
    RateLimitError,
    ResumeUnavailableError,
    ToolCall,
)
from circuit_breaker._core import Call, Config, Failover, GQLCall, rest_step
from circuit_breaker._retry import RetryPolicy, retryable_exception, retryable_status
from circuit_breaker._sse import SSEParser
from circuit_breaker._stream import StreamRequest, _interrupted, _State
from circuit_breaker.errors import error_from_graphql, error_from_response
from circuit_breaker.events import parse_event

STREAM = (
    "id: 1\nevent: execution_start\ndata: {\"execution_id\": \"e\", \"agent_id\": \"a\"}\n\n"
    ": heartbeat\n\n"
    "id: 2\nevent: content_chunk\ndata: {\"execution_id\": \"e\", \"delta\": \"Hel\"}\n\n"
    "id: 3\r\nevent: content_chunk\r\n"
    "data: {\"execution_id\": \"e\",\r\ndata:  \"delta\": \"lo\"}\r\n\r\n"
    "id: 4\nevent: something_new\ndata: {}\n\n"
    "id: 5\nevent: execution_complete\ndata: " + json.dumps(
        {"execution_id": "e", "status": "completed", "response": {"content": "Hello"},
         "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
    ) + "\n\n"
)  # fmt: skip


@pytest.mark.parametrize("size", [1, 2, 7, len(STREAM)])
def test_sse_parser_gives_the_same_events_however_the_bytes_are_cut(size: int) -> None:
    parser = SSEParser()
    messages = []
    for i in range(0, len(STREAM), size):
        messages += parser.feed(STREAM[i : i + size])
    assert [(m.id, m.event) for m in messages] == [
        ("1", "execution_start"), ("2", "content_chunk"), ("3", "content_chunk"),
        ("4", "something_new"), ("5", "execution_complete"),
    ]  # fmt: skip
    assert json.loads(messages[2].data) == {"execution_id": "e", "delta": "lo"}  # two data lines
    assert parser.comments == 1


def test_typed_events_and_the_stream_state_skip_duplicates() -> None:
    parser = SSEParser()
    events = [parse_event(m.event, m.data, m.id) for m in parser.feed(STREAM)]
    assert events[3] is None  # an unknown type is ignored
    known = [e for e in events if e is not None]
    assert [e.type for e in known] == [
        "execution_start", "content_chunk", "content_chunk", "execution_complete"
    ]  # fmt: skip
    assert isinstance(known[1], ContentChunk) and known[1].delta == "Hel"
    assert isinstance(known[-1], ExecutionComplete) and known[-1].result.content == "Hello"
    state = _State()
    delivered = [e for e in known[:3] + known[1:] if state.accept(e)]  # a resume overlapping
    assert [e.event_id for e in delivered] == [1, 2, 3, 5]
    assert state.done and state.execution_id == "e" and "".join(state.parts) == "Hello"


def test_tool_call_and_error_events() -> None:
    call = parse_event(
        "tool_call",
        json.dumps({"execution_id": "e", "turn": 1, "id": "c1", "type": "function",
                    "function": {"name": "roi_calculator", "arguments": "{}"}}),
        "4",
    )  # fmt: skip
    assert isinstance(call, ToolCall) and call.call_id == "c1" and call.name == "roi_calculator"
    error = parse_event(
        "error",
        json.dumps({"type": "resume_unavailable", "message": "gap",
                    "details": {"replayable_to": 7}}),
        None,
    )  # fmt: skip
    assert isinstance(error, Error) and error.event_id is None
    exc = error.to_exception()
    assert isinstance(exc, ResumeUnavailableError) and exc.details == {"replayable_to": 7}


def test_backoff_grows_with_jitter_and_never_undercuts_retry_after() -> None:
    policy = RetryPolicy(max_retries=5, base=0.5, max_wait=8.0, jitter=0.25)
    rng = random.Random(7)
    for attempt, nominal in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0]):
        waits = [policy.wait(attempt, rng=rng) for _ in range(50)]
        assert all(nominal * 0.75 <= w <= nominal * 1.25 for w in waits)
        assert len(set(waits)) > 1  # jittered
    assert policy.wait(0, retry_after=3.0, rng=rng) == 3.0
    assert policy.wait(0, retry_after=500.0, rng=rng) == policy.max_retry_after


def test_which_failures_are_retried() -> None:
    assert retryable_status(429, False, None) and retryable_status(503, True, None)
    assert not retryable_status(429, False, "exec-1")  # an execution ran: never again
    assert not retryable_status(400, True, None) and not retryable_status(404, True, None)
    request = httpx.Request("POST", "http://x/api/v1/agents/a/execute")
    assert retryable_exception(httpx.ConnectError("refused", request=request), False)
    assert not retryable_exception(httpx.ReadError("cut", request=request), False)
    assert retryable_exception(httpx.ReadError("cut", request=request), True)


def _reply(status: int, body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


def test_rest_steps_retry_fail_over_or_raise() -> None:
    policy = RetryPolicy(max_retries=2)
    gql = GQLCall("{ x }", {}, lambda d: d)
    call: Call[object] = Call("POST", "/api/v1/agents", lambda r: r.json(), json={}, graphql=gql)
    limited = _reply(429, {"error": {"type": "rate_limited", "message": "slow"}},
                     {"Retry-After": "4"})  # fmt: skip
    step = rest_step(call, limited, None, 0, policy, switchable=True)
    assert step.wait is not None and step.wait >= 4  # 429 is not a surface failure: retried
    step = rest_step(call, limited, None, 2, policy, switchable=True)
    assert isinstance(step.error, RateLimitError) and step.error.retry_after == 4
    down = rest_step(call, httpx.Response(503, text="bad gateway"), None, 0, policy, True)
    assert down.error is not None and type(down.error).__name__ == "SurfaceDown"
    ran = _reply(504, {"error": {"type": "provider_timeout", "message": "t", "execution_id": "e"}})
    step = rest_step(call, ran, None, 0, policy, switchable=True)
    assert isinstance(step.error, ProviderTimeoutError) and step.error.execution_id == "e"
    assert rest_step(call, _reply(201, {"ok": 1}), None, 0, policy, True).value == {"ok": 1}


def test_failover_moves_to_graphql_and_comes_back_after_the_cooldown() -> None:
    gql = GQLCall("{ x }", {}, lambda d: d)
    both: Call[object] = Call("GET", "/api/v1/agents", lambda r: None, graphql=gql)
    rest_only: Call[object] = Call("GET", "/api/v1/budgets", lambda r: None)
    failover = Failover("auto", cooldown=3600)
    assert failover.surface_for(both) == "rest"
    failover.use("graphql", "rest down")
    assert failover.surface_for(both) == "graphql" and failover.surface_for(rest_only) == "rest"
    failover.cooldown = 0
    assert failover.surface_for(both) == "rest"  # time to try REST again
    assert Failover("rest", 0).surface_for(both) == "rest"
    assert Failover("graphql", 0).surface_for(both) == "graphql"
    assert not Failover("rest", 0).can_switch(both)


def test_errors_map_to_one_class_per_type() -> None:
    budget = error_from_response(
        402, {}, {"error": {"type": "budget_exceeded", "details": {"scope": "t"}}}, ""
    )
    assert isinstance(budget, BudgetExceededError) and budget.details == {"scope": "t"}
    busy = error_from_response(503, {"retry-after": "2"}, {"error": {"type": "overloaded"}}, "")
    assert isinstance(busy, OverloadedError) and busy.retry_after == 2.0
    openai_shape = error_from_response(
        429, {}, {"error": {"type": "rate_limit_error", "code": "rate_limited", "message": "m"}}, ""
    )
    assert isinstance(openai_shape, RateLimitError)
    gql = error_from_graphql([{"message": "x", "extensions": {"code": "RATE_LIMITED",
                                                              "type": "rate_limited",
                                                              "retryAfter": 3}}])  # fmt: skip
    assert isinstance(gql, RateLimitError) and gql.retry_after == 3
    assert isinstance(error_from_graphql([{"message": "agent a not found"}]), NotFoundError)


def test_config_reads_the_environment_and_calls_a_key_function(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CB_BASE_URL", "http://gw:9/")
    monkeypatch.setenv("CB_TENANT_ID", "t1")
    monkeypatch.setenv("CB_API_KEY", "cbk_env")
    config = Config.build(None, None, None, None, None, "auto", 30, None)
    assert config.base_url == "http://gw:9" and config.auth_headers()["X-Tenant-ID"] == "t1"
    assert config.auth_headers()["Authorization"] == "Bearer cbk_env"
    tokens = iter(["jwt-1", "jwt-2"])
    fresh = Config.build(None, None, lambda: next(tokens), None, None, "auto", 30, None)
    assert [fresh.auth_headers()["Authorization"] for _ in range(2)] == [
        "Bearer jwt-1", "Bearer jwt-2"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="mode"):
        Config.build(None, None, None, None, None, "soap", 30, None)  # type: ignore[arg-type]


def test_legacy_builders_map_onto_the_new_names_and_warn() -> None:
    from circuit_breaker import legacy

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        definition = (
            legacy.create_agent("X").set_model(legacy.COMMON_MODELS.GPT_O4_MINI)
            .set_system_prompt("p").set_temperature(0).add_tool("roi_calculator", "d", {})
            .set_memory("buffer").build()
        )  # fmt: skip
        chat = (
            legacy.create_smart_chat(legacy.COMMON_MODELS.SMART_CODING)
            .set_task_type("coding")
            .add_user_message("u")
            .build()
        )
    assert definition == {
        "name": "X", "model": "o4-mini-2025-04-16", "system_prompt": "p",
        "parameters": {"temperature": 0}, "tools": ["roi_calculator"],
    }  # fmt: skip
    assert chat == {"model": "cb:coding", "messages": [{"role": "user", "content": "u"}]}
    assert [w.category for w in caught] == [DeprecationWarning, DeprecationWarning]
    assert "client.agents.create" in str(caught[0].message)


def test_an_interrupted_live_stream_is_resumed_and_a_replayed_interruption_is_not() -> None:
    live = parse_event("error", json.dumps({"type": "execution_interrupted", "message": "m"}), None)
    replayed = parse_event("error", json.dumps({"type": "execution_interrupted"}), "9")
    req = StreamRequest("POST", "/x")
    assert _interrupted(live, _State(execution_id="e"), req)
    assert not _interrupted(replayed, _State(execution_id="e"), req)  # the store's end: final
    assert not _interrupted(
        live, _State(execution_id="e"), StreamRequest("POST", "/x", max_resumes=0)
    )


def _recording_transport(
    answers: dict[tuple[str, str], httpx.Response],
) -> tuple[list[httpx.Request], httpx.MockTransport]:
    """A transport answering by (method, raw path), recording every request."""
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[(request.method, request.url.raw_path.decode())]

    return seen, httpx.MockTransport(handle)


RESULT = {"execution_id": "e1", "agent_id": "a1", "status": "completed",
          "response": {"content": "ok"}, "usage": {}, "metadata": {}, "error": None}  # fmt: skip
STREAMED = (
    'id: 1\nevent: execution_start\ndata: {"execution_id": "e1", "agent_id": "a1"}\n\n'
    "id: 2\nevent: execution_complete\ndata: " + json.dumps(RESULT) + "\n\n"
)


def test_execute_and_stream_send_the_subject_only_when_given() -> None:
    from circuit_breaker import Client

    seen, transport = _recording_transport({
        ("POST", "/api/v1/agents/a1/execute"): httpx.Response(200, json=RESULT),
        ("POST", "/api/v1/agents/a1/execute/stream"): httpx.Response(
            200, text=STREAMED, headers={"content-type": "text/event-stream"}
        ),
    })  # fmt: skip
    client = Client("http://gw", "t1", "cbk_x", transport=transport, mode="rest")
    assert client.agents.execute("a1", prompt="hi", subject="user-42").content == "ok"
    assert client.agents.execute("a1", prompt="hi").content == "ok"
    assert client.agents.stream("a1", prompt="hi", subject="user-42").final().content == "ok"
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0] == {"prompt": "hi", "subject": "user-42"}
    assert "subject" not in bodies[1]
    assert bodies[2]["subject"] == "user-42" and bodies[2]["prompt"] == "hi"


def test_execute_over_graphql_sends_the_subject_as_user() -> None:
    from circuit_breaker._calls import agent_execute

    call = agent_execute("a1", {"prompt": "hi", "subject": "user-42"})
    assert call.json == {"prompt": "hi", "subject": "user-42"}
    assert call.graphql is not None and call.graphql.variables["input"]["user"] == "user-42"
    plain = agent_execute("a1", {"prompt": "hi"})
    assert plain.graphql is not None and "user" not in plain.graphql.variables["input"]


EXPORT = (
    json.dumps({"kind": "execution", "data": {"execution_id": "e1", "input": {"prompt": "p"}}})
    + "\n"
    + json.dumps({"kind": "event", "aggregate_id": "e1", "version": 1, "data": {}})
    + "\n"
)
ERASURE = {"subject_ref": "ref", "executions": 2, "keys_destroyed": 1}
RETENTION = {"retention": {"payload_days": 30, "metrics_days": None}}


def _privacy_answers() -> dict[tuple[str, str], httpx.Response]:
    path = "/api/v1/subjects/user%2F42%20%C3%A9"  # "user/42 é", one escaped path segment
    return {
        ("GET", path): httpx.Response(
            200, json={"subject_ref": "ref", "executions": [{"execution_id": "e1",
                                                             "payload": "erased"}]}
        ),
        ("GET", path + "/export"): httpx.Response(
            200, text=EXPORT, headers={"content-type": "application/x-ndjson"}
        ),
        ("DELETE", path): httpx.Response(200, json=ERASURE),
        ("GET", "/api/v1/retention"): httpx.Response(200, json={"retention": None}),
        ("PUT", "/api/v1/retention"): httpx.Response(200, json=RETENTION),
        ("DELETE", "/api/v1/retention"): httpx.Response(200, json={"retention": None}),
    }  # fmt: skip


def test_subjects_and_retention_of_the_sync_client() -> None:
    from circuit_breaker import Client

    seen, transport = _recording_transport(_privacy_answers())
    client = Client("http://gw", "t1", "cbk_x", transport=transport)
    subject = "user/42 é"
    listed = client.subjects.list(subject)
    assert listed["subject_ref"] == "ref" and listed["executions"][0]["payload"] == "erased"
    lines = client.subjects.export(subject)
    assert [line["kind"] for line in lines] == ["execution", "event"]
    assert lines[0]["data"]["input"] == {"prompt": "p"}
    assert client.subjects.erase(subject) == ERASURE
    assert client.retention.get() == {"retention": None}
    assert client.retention.set(30) == RETENTION
    assert client.retention.set(7, metrics_days=90) == RETENTION
    assert client.retention.clear() == {"retention": None}
    assert [(r.method, r.url.raw_path.decode()) for r in seen][:3] == [
        ("GET", "/api/v1/subjects/user%2F42%20%C3%A9"),
        ("GET", "/api/v1/subjects/user%2F42%20%C3%A9/export"),
        ("DELETE", "/api/v1/subjects/user%2F42%20%C3%A9"),
    ]  # fmt: skip
    assert seen[1].headers["accept"] == "application/x-ndjson"
    assert json.loads(seen[4].content) == {"payload_days": 30, "metrics_days": None}
    assert json.loads(seen[5].content) == {"payload_days": 7, "metrics_days": 90}
    assert all(r.headers["authorization"] == "Bearer cbk_x" for r in seen)


def test_subjects_and_retention_map_errors_and_retry() -> None:
    from circuit_breaker import Client, PermissionDeniedError

    calls: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if request.method == "DELETE" and len(calls) == 1:
            return httpx.Response(503, json={"error": {"type": "overloaded", "message": "m"}},
                                  headers={"Retry-After": "0"})  # fmt: skip
        if request.method == "DELETE":
            return httpx.Response(200, json=ERASURE)
        return httpx.Response(
            403, json={"error": {"type": "permission_denied", "message": "needs tenant:admin"}}
        )

    client = Client("http://gw", "t1", "cbk_x", transport=httpx.MockTransport(handle))
    client.config.retry = RetryPolicy(max_retries=2, base=0.0)  # no wait in the test
    assert client.subjects.erase("u1") == ERASURE  # a DELETE is retried after a 503
    assert calls == ["DELETE", "DELETE"]
    with pytest.raises(PermissionDeniedError):
        client.retention.set(30)


async def test_subjects_and_retention_of_the_async_client() -> None:
    from circuit_breaker import AsyncClient

    seen, sync_transport = _recording_transport(_privacy_answers())

    async def handle(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return sync_transport.handle_request(request)

    async with AsyncClient(
        "http://gw", "t1", "cbk_x", transport=httpx.MockTransport(handle)
    ) as client:
        subject = "user/42 é"
        assert (await client.subjects.list(subject))["executions"][0]["execution_id"] == "e1"
        assert len(await client.subjects.export(subject)) == 2
        assert (await client.subjects.erase(subject))["keys_destroyed"] == 1
        assert await client.retention.get() == {"retention": None}
        assert await client.retention.set(30, 60) == RETENTION
        assert await client.retention.clear() == {"retention": None}
    assert [r.method for r in seen] == ["GET", "GET", "DELETE", "GET", "PUT", "DELETE"]
    assert json.loads(seen[4].content) == {"payload_days": 30, "metrics_days": 60}
