"""The execution routes' fast lane: ASGI in front of FastAPI's routing for
`POST /api/v1/agents/{agent_id}/execute[/stream]` and `POST /v1/chat/completions`.

A well-formed request (JSON body the route's model accepts) is validated in one pass and
handed to the same endpoint function FastAPI would call, with the same dependencies
(authentication, runtime, admission), but without routing, dependency solving and
Starlette's exception and exit-stack layers. Anything else (another route or method, another
content type, a body that does not validate) goes to the app unchanged, its body replayed,
so every refusal is the app's own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import errors
from api.admission import Admission
from api.auth import key_principal, tenant_principal
from api.responses import door_path
from api.routes import agents, chat_completions
from api.runtime import Runtime
from domain.chat_completions import ChatCompletionRequest
from domain.errors import CBError
from domain.schemas import ExecuteRequest

AGENTS = "/api/v1/agents/"
CHAT = "/v1/chat/completions"


async def _execute(
    lane: FastLane, request: Request, agent_id: str, body: Any, key: str | None
) -> Response:
    who = await tenant_principal(request, *_credentials(request))
    return await agents.execute(agent_id, body, request, who, lane.runtime, lane.admission, key)


async def _execute_stream(
    lane: FastLane, request: Request, agent_id: str, body: Any, key: str | None
) -> Response:
    who = await tenant_principal(request, *_credentials(request))
    return await agents.execute_stream(agent_id, body, who, lane.runtime, lane.admission, key)


async def _chat(
    lane: FastLane, request: Request, agent_id: str, body: Any, key: str | None
) -> Response:
    who = await key_principal(request, *_credentials(request))
    return await chat_completions.chat_completions(
        request, body, who, lane.runtime, lane.admission, key
    )


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """`X-Tenant-ID` and `Authorization`, as the routes' header dependencies read them."""
    return request.headers.get("x-tenant-id"), request.headers.get("authorization")


@dataclass(frozen=True)
class Route:
    """A route the lane serves: its template (read as `scope["route"].path` by the request
    metrics, traces and error logs), its body's model and its endpoint."""

    path: str
    body: type[BaseModel]
    endpoint: Callable[[FastLane, Request, str, Any, str | None], Awaitable[Response]]


ROUTES = {
    r.path: r
    for r in (
        Route(CHAT, ChatCompletionRequest, _chat),
        Route(f"{AGENTS}{{agent_id}}/execute", ExecuteRequest, _execute),
        Route(f"{AGENTS}{{agent_id}}/execute/stream", ExecuteRequest, _execute_stream),
    )
}


class FastLane:
    """ASGI: the execution routes' well-formed requests straight to their endpoints."""

    def __init__(self, app: ASGIApp, runtime: Runtime, admission: Admission) -> None:
        self.app = app
        self.runtime = runtime
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route, agent_id = None, ""
        if scope["type"] == "http" and scope["method"] == "POST":
            path = door_path(scope)
            if path.startswith(AGENTS):
                agent_id, _, tail = path[len(AGENTS) :].partition("/")
                path = f"{AGENTS}{{agent_id}}/{tail}" if agent_id else path
            route = ROUTES.get(path)
        if route is None:
            await self.app(scope, receive, send)
        else:
            await self._serve(scope, receive, send, route, agent_id)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, route: Route, agent_id: str
    ) -> None:
        request = Request(scope, receive)
        if not _json(request.headers.get("content-type", "application/json")):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except CBError as err:  # too large (errors.BodyLimit)
            await (await errors.on_cb_error(request, err))(scope, receive, send)
            return
        try:
            parsed = route.body.model_validate_json(body or b"null")
        except ValidationError:  # the app answers it, in its own words
            await self.app(scope, _replaying(body, receive), send)
            return
        scope["route"] = route
        scope["path_params"] = {"agent_id": agent_id} if agent_id else {}
        key = request.headers.get("idempotency-key")
        try:
            response = await route.endpoint(self, request, agent_id, parsed, key)
        except CBError as err:
            response = await errors.on_cb_error(request, err)
        await response(scope, receive, send)


def _json(content_type: str) -> bool:
    """A content type FastAPI parses as JSON (`application/json`, `application/*+json`)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away while sending
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """`receive` with the body already read handed out again first."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
