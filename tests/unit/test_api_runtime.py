"""The API over a Runtime whose actor handles are fakes: no Ray, the whole FastAPI app.

A fake handle answers `handle.method.remote(*args)` with an awaitable reply dict, as an actor
wrapped by `actors.replies` does.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from ray.exceptions import ActorDiedError

from actors import tracing
from actors.settings import Settings
from api.app import create_app
from api.clients import Actors, Peer
from api.runtime import Runtime
from domain.errors import NotFound, RateLimited
from domain.keys import hash_key
from domain.results import Answer, Outcome, result_document

TENANT = str(uuid.uuid4())
KEY = "cbk_unit-test-key"
HEADERS = {"X-Tenant-ID": TENANT, "Authorization": f"Bearer {KEY}"}
PROMPT = {"prompt": "hello"}


class _Method:
    def __init__(self, actor: FakeActor, name: str, answer: Callable[..., Any]) -> None:
        self.actor, self.name, self.answer = actor, name, answer

    def remote(self, *args: Any) -> Any:
        self.actor.calls.append((self.name, args))

        async def reply() -> Any:
            value = self.answer(*args)
            if isinstance(value, BaseException):
                raise value
            return value

        return reply()


class FakeActor:
    """An actor handle whose methods are the given functions (each returns a reply dict, or
    an exception to raise); it records every call."""

    def __init__(self, **methods: Callable[..., Any]) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        for name, answer in methods.items():
            setattr(self, name, _Method(self, name, answer))


class FakeActors(Actors):
    """The deployment's actors, as fakes: one tenant, the config and the projection actor."""

    def __init__(self, tenant: FakeActor, projection: FakeActor | None = None) -> None:
        super().__init__(Settings())
        self.tenant_actor = tenant
        self.config_fake = FakeActor(snapshot=lambda known: {"value": None})
        self.projection_actor = projection or read_models()

    def tenant(self, tenant_id: str) -> Peer:
        assert tenant_id == TENANT
        return _peer("tenant", self.tenant_actor)

    def config_actor(self) -> Peer:
        return _peer("config", self.config_fake)

    def projection(self) -> Peer:
        return _peer("projection", self.projection_actor)


def _peer(name: str, actor: FakeActor) -> Peer:
    return Peer(f"unit:{name}:{uuid.uuid4()}", lambda: actor, lambda: actor)


def read_models(knows_the_key: bool = True) -> FakeActor:
    """A projection actor that knows KEY (of TENANT, agents scopes) or no key at all, and
    records audit entries."""
    record = {
        "tenant_id": TENANT,
        "key_id": "k1",
        "scopes": ["agents:read", "agents:write", "agents:execute"],
        "revoked": False,
        "expires_at": None,
    }
    known = {hash_key(KEY): record} if knows_the_key else {}
    return FakeActor(
        lookup_key=lambda key_hash: {"value": known.get(key_hash)},
        record_security=lambda entries: {"value": None},
    )


def completed(execution_id: str, agent_id: str, content: str) -> dict[str, Any]:
    """A completed execution's result, answering `content`."""
    outcome = Outcome(answer=Answer(content=content, finish_reason="stop"))
    return result_document(execution_id, agent_id, "completed", "cb:fast", outcome)


def build(tenant: FakeActor, projection: FakeActor | None = None) -> FastAPI:
    return create_app(Runtime(Settings(), FakeActors(tenant, projection)))


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def _refusal(err: Exception) -> dict[str, Any]:
    assert isinstance(err, RateLimited | NotFound)
    return {"error": err.to_dict(), "status": err.status}


async def test_an_execution_answers_with_the_headers_of_the_reply_envelope() -> None:
    def execute(agent_id: str, body: dict, execution_id: str, retried: bool, traceparent: Any):
        headers = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "59"}
        return {"value": completed(execution_id, agent_id, body["prompt"]), "headers": headers}

    tenant = FakeActor(execute=execute)
    async with client(build(tenant)) as http:
        reply = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
    assert reply.status_code == 200
    assert reply.headers["X-RateLimit-Limit"] == "60"
    assert reply.headers["X-RateLimit-Remaining"] == "59"
    assert reply.json()["agent_id"] == "a1" and reply.json()["response"]["content"] == "hello"
    [(method, (agent_id, _, execution_id, retried, traceparent))] = tenant.calls
    assert (method, agent_id, retried, traceparent) == ("execute", "a1", False, None)
    assert reply.json()["execution_id"] == execution_id


async def test_with_tracing_off_a_traceparent_is_passed_on_and_named_in_errors() -> None:
    """No OTLP endpoint: no span is made, but the caller's `traceparent` goes on to the
    tenant actor unchanged (and from there to the provider), and an error names its trace."""
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    missing = NotFound("agent a9 not found")
    calls = {"n": 0}

    def execute(*args: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 2:
            return _refusal(missing)
        return {"value": completed(args[2], args[0], "hello")}

    tenant = FakeActor(execute=execute)
    app = build(tenant)
    assert not tracing.enabled()
    async with client(app) as http:
        traced = {**HEADERS, "traceparent": incoming}
        ok = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=traced)
        refused = await http.post("/api/v1/agents/a9/execute", json=PROMPT, headers=traced)
        plain = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
        bad = {**HEADERS, "traceparent": "00-not-a-trace-01"}
        invalid = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=bad)
    assert ok.status_code == 200
    assert refused.status_code == 404
    assert refused.json()["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert plain.status_code == invalid.status_code == 200
    sent = [args[-1] for _, args in tenant.calls]
    assert sent == [incoming, incoming, None, None]  # nothing of one request's left for the next


async def test_an_actor_error_reply_is_its_status_and_error_body() -> None:
    missing = NotFound("agent a9 not found")
    tenant = FakeActor(get_agent=lambda agent_id: _refusal(missing))
    async with client(build(tenant)) as http:
        reply = await http.get("/api/v1/agents/a9", headers=HEADERS)
    assert reply.status_code == 404
    assert reply.json() == {"error": {"type": "not_found", "message": "agent a9 not found"}}


async def test_a_refused_rate_keeps_its_headers_and_is_remembered_by_that_app_only() -> None:
    """A requests-per-minute refusal is a 429 with Retry-After and X-RateLimit-*; the app
    that saw it answers the next one itself, another app built in the process does not."""
    details = {"limit": "requests_per_minute", "headers": {"X-RateLimit-Remaining": "0"}}
    over = RateLimited("over the rate", retry_after=30.0, details=details)
    first = FakeActor(execute=lambda *_: _refusal(over))
    second = FakeActor(execute=lambda *_: _refusal(over))
    one, other = build(first), build(second)
    async with client(one) as http:
        for _ in range(2):
            reply = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
            assert reply.status_code == 429
            assert reply.json()["error"]["type"] == "rate_limited"
            assert reply.headers["X-RateLimit-Remaining"] == "0"
            assert 29 <= int(reply.headers["Retry-After"]) <= 30
    assert len(first.calls) == 1  # the second was refused from memory
    async with client(other) as http:
        reply = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
    assert reply.status_code == 429 and len(second.calls) == 1


async def test_an_execution_retried_on_a_new_actor_keeps_its_id_and_says_so() -> None:
    attempts: list[tuple[str, bool]] = []

    def execute(agent_id: str, body: dict, execution_id: str, retried: bool, _: Any) -> Any:
        attempts.append((execution_id, retried))
        if len(attempts) == 1:
            return ActorDiedError()  # evicted mid-call: the client recreates it and asks again
        return {"value": completed(execution_id, agent_id, "again")}

    async with client(build(FakeActor(execute=execute))) as http:
        reply = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
    assert reply.status_code == 200
    execution_id = reply.json()["execution_id"]
    assert attempts == [(execution_id, False), (execution_id, True)]


async def test_two_apps_in_one_process_keep_their_own_keys_and_audit_trails() -> None:
    """Each app has its own runtime: a refusal goes to the read models of the app that
    refused it, and a key cached by one app is unknown to the other's read models."""
    trail_one, trail_other = read_models(), read_models(knows_the_key=False)
    one = build(FakeActor(list_agents=lambda: {"value": []}), trail_one)
    other = build(FakeActor(list_agents=lambda: {"value": []}), trail_other)
    async with client(one) as http:
        assert (await http.get("/api/v1/agents", headers=HEADERS)).json() == {"agents": []}
    async with client(other) as http:
        refused = await http.get("/api/v1/agents", headers=HEADERS)
    assert refused.status_code == 401
    assert one.state.runtime is not other.state.runtime
    assert one.state.admission is not other.state.admission
    await asyncio.sleep(1.2)  # the security log flushes each second
    assert [m for m, _ in trail_one.calls] == ["lookup_key"]
    assert [m for m, _ in trail_other.calls] == ["lookup_key", "record_security"]
    [([entry],)] = [args for m, args in trail_other.calls if m == "record_security"]
    assert entry["kind"] == "authentication_failed" and entry["tenant_id"] == TENANT


async def test_graphql_resolvers_reach_the_runtime_through_their_context() -> None:
    tenant = FakeActor(list_tools=lambda: {"value": {"tools": []}})
    async with client(build(tenant)) as http:
        reply = await http.post("/graphql", json={"query": "{ tools { name } }"}, headers=HEADERS)
    assert reply.json() == {"data": {"tools": []}}
    assert tenant.calls == [("list_tools", ())]


def test_the_execution_routes_run_no_dependency_in_a_worker_thread() -> None:
    """FastAPI runs a plain-function dependency in a thread pool on every request; on the
    hot path that cost a replica about a fifth of its CPU."""
    from fastapi.routing import APIRoute

    def routes(container: Any) -> list[APIRoute]:
        inner = getattr(container, "original_router", None) or container
        found = []
        for route in getattr(inner, "routes", []):
            found += [route] if isinstance(route, APIRoute) else routes(route)
        return found

    def sync_calls(dependant: Any) -> list[str]:
        own = [d.call.__name__ for d in dependant.dependencies]
        own = [n for d, n in zip(dependant.dependencies, own, strict=True)
               if not asyncio.iscoroutinefunction(d.call)]  # fmt: skip
        return own + [n for d in dependant.dependencies for n in sync_calls(d)]

    hot = [r for r in routes(build(FakeActor())) if r.path.endswith(("/execute", "/stream"))]
    assert len(hot) >= 3  # execute, execute/stream, executions/{id}/stream
    assert {r.path: sync_calls(r.dependant) for r in hot} == {r.path: [] for r in hot}
