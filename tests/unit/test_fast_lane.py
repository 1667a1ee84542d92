"""The execution routes' fast lane (`api.fast_lane`): it takes the well-formed requests of
its routes, hands everything else to the app with the body replayed, and answers every
request exactly as the app without it does."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.fast_lane import FastLane
from domain.errors import NotFound, RateLimited
from tests.unit.test_api_runtime import (
    HEADERS,
    PROMPT,
    TENANT,
    FakeActor,
    _refusal,
    build,
    client,
    completed,
    read_models,
)

CHAT = {"model": "cb:fast", "messages": [{"role": "user", "content": "hi"}]}
OVER_RATE = RateLimited(
    "over the rate", retry_after=30.0,
    details={"limit": "requests_per_minute", "headers": {"X-RateLimit-Remaining": "0"}},
)  # fmt: skip


def _tenant() -> FakeActor:
    """Answers agent a1, refuses a9 as missing and a7 as over the rate."""

    def execute(agent_id: str, body: dict, execution_id: str, *_: Any) -> dict[str, Any]:
        if agent_id == "a9":
            return _refusal(NotFound("agent a9 not found"))
        if agent_id == "a7":
            return _refusal(OVER_RATE)
        return {"value": completed(execution_id, agent_id, body["prompt"]),
                "headers": {"X-RateLimit-Remaining": "5"}}  # fmt: skip

    def complete_chat(job: dict, agent_id: Any, execution_id: str, *_: Any) -> dict[str, Any]:
        result = completed(execution_id, "chat", job["messages"][-1]["content"])
        return {"value": {**result, "metadata": {"model_resolved": "m", "provider": "p"}}}

    return FakeActor(execute=execute, complete_chat=complete_chat)


def _without_lane(app: FastAPI) -> FastAPI:
    app.user_middleware = [m for m in app.user_middleware if m.cls is not FastLane]
    return app


AUTHLESS = {"X-Tenant-ID": TENANT}
CASES: list[tuple[str, str, dict[str, str], Any]] = [
    ("ok", "/api/v1/agents/a1/execute", HEADERS, PROMPT),
    ("missing agent", "/api/v1/agents/a9/execute", HEADERS, PROMPT),
    ("over the rate", "/api/v1/agents/a7/execute", HEADERS, PROMPT),
    ("no key", "/api/v1/agents/a1/execute", AUTHLESS, PROMPT),
    ("unknown key", "/api/v1/agents/a1/execute",
     {**HEADERS, "Authorization": "Bearer cbk_nobody"}, PROMPT),
    ("no tenant", "/api/v1/agents/a1/execute", {"Authorization": HEADERS["Authorization"]}, PROMPT),
    ("blank prompt", "/api/v1/agents/a1/execute", HEADERS, {"prompt": "  "}),
    ("extra field", "/api/v1/agents/a1/execute", HEADERS, {**PROMPT, "nope": 1}),
    ("not json", "/api/v1/agents/a1/execute", HEADERS, b"{prompt"),
    ("empty body", "/api/v1/agents/a1/execute", HEADERS, b""),
    ("text body", "/api/v1/agents/a1/execute", {**HEADERS, "Content-Type": "text/plain"},
     b'{"prompt": "hello"}'),
    ("bad idempotency key", "/api/v1/agents/a1/execute",
     {**HEADERS, "Idempotency-Key": "x" * 300}, PROMPT),
    ("empty agent id", "/api/v1/agents//execute", HEADERS, PROMPT),
    ("trailing slash", "/api/v1/agents/a1/execute/", HEADERS, PROMPT),
    ("chat", "/v1/chat/completions", HEADERS, CHAT),
    ("chat, key names the tenant", "/v1/chat/completions",
     {"Authorization": HEADERS["Authorization"]}, CHAT),
    ("chat, n=2", "/v1/chat/completions", HEADERS, {**CHAT, "n": 2}),
    ("chat, no messages", "/v1/chat/completions", HEADERS, {**CHAT, "messages": []}),
    ("chat, no key", "/v1/chat/completions", {}, CHAT),
]  # fmt: skip


def _comparable(reply: httpx.Response) -> tuple[int, Any, dict[str, str]]:
    """Status, body (ids that differ per call taken out) and the headers that matter."""
    body = reply.json() if reply.content else None
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("execution_id", "id", "created")}
        body.pop("started_at", None), body.pop("completed_at", None)
    kept = {k: v for k, v in reply.headers.items()
            if k.lower() not in ("content-length", "x-cb-execution-id")}  # fmt: skip
    return reply.status_code, body, kept


@pytest.mark.parametrize("name,path,headers,body", CASES, ids=[c[0] for c in CASES])
async def test_answers_as_the_app_without_it(
    name: str, path: str, headers: dict[str, str], body: Any
) -> None:
    replies = []
    for app in (build(_tenant()), _without_lane(build(_tenant()))):
        async with client(app) as http:
            if isinstance(body, bytes):
                reply = await http.post(path, content=body, headers=headers)
            else:
                reply = await http.post(path, json=body, headers=headers)
        replies.append(_comparable(reply))
    assert replies[0] == replies[1]


async def test_a_too_large_body_is_the_same_413_with_and_without_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CB_MAX_BODY_BYTES", "64")
    big = json.dumps({"prompt": "x" * 200}).encode()

    async def chunks() -> Any:  # no length declared: the limit is met while reading
        for start in range(0, len(big), 32):
            yield big[start : start + 32]

    replies = []
    for app in (build(_tenant()), _without_lane(build(_tenant()))):
        async with client(app) as http:
            reply = await http.post("/api/v1/agents/a1/execute", content=chunks(), headers=HEADERS)
        replies.append((reply.status_code, reply.json()["error"]["type"]))
    assert replies[0] == replies[1] == (413, "payload_too_large")


class _Spy:
    """An inner app that records what reaches it, answering 418."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bytes]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.seen.append((scope["path"], body))
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_it_takes_well_formed_executions_and_replays_the_rest_to_the_app() -> None:
    app = build(_tenant(), read_models())
    runtime, admission = app.state.runtime, app.state.admission
    spy = _Spy()
    lane = FastLane(spy, runtime, admission)

    async def served(scope: Any, receive: Any, send: Any) -> None:
        scope["app"] = app  # as Starlette sets it, outside every middleware
        await lane(scope, receive, send)

    transport = httpx.ASGITransport(app=served)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        ok = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
        chat = await http.post("/v1/chat/completions", json=CHAT, headers=HEADERS)
        invalid = await http.post("/api/v1/agents/a1/execute", content=b"{nope", headers=HEADERS)
        other = await http.post("/api/v1/agents", json={"name": "x"}, headers=HEADERS)
        read = await http.get("/api/v1/agents/a1/execute", headers=HEADERS)
    assert ok.status_code == 200 and ok.json()["response"]["content"] == "hello"
    assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == "hi"
    assert invalid.status_code == other.status_code == read.status_code == 418
    assert spy.seen == [
        ("/api/v1/agents/a1/execute", b"{nope"),  # the body replayed whole
        ("/api/v1/agents", b'{"name":"x"}'),
        ("/api/v1/agents/a1/execute", b""),
    ]
