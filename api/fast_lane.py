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


@dataclass(frozen=True)
class Template:
    """A matched route as the metrics, traces and error logs read it (`scope["route"].path`)."""

    path: str


ROUTES = {t: Template(t) for t in (CHAT, f"{AGENTS}{{agent_id}}/execute",
                                   f"{AGENTS}{{agent_id}}/execute/stream")}  # fmt: skip


class FastLane:
    """ASGI: the execution routes' well-formed requests straight to their endpoints."""

    def __init__(self, app: ASGIApp, runtime: Runtime, admission: Admission) -> None:
        self.app = app
        self.runtime = runtime
        self.admission = admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        path = door_path(scope)
        if path == CHAT:
            await self._serve(scope, receive, send, CHAT, "")
        elif path.startswith(AGENTS):
            agent_id, _, tail = path[len(AGENTS) :].partition("/")
            if agent_id and tail in ("execute", "execute/stream"):
                await self._serve(scope, receive, send, f"{AGENTS}{{agent_id}}/{tail}", agent_id)
                return
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _serve(
        self, scope: Scope, receive: Receive, send: Send, template: str, agent_id: str
    ) -> None:
        request = Request(scope, receive)
        content_type = request.headers.get("content-type", "application/json")
        if not _json(content_type):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except CBError as err:  # too large (errors.BodyLimit)
            await (await errors.on_cb_error(request, err))(scope, receive, send)
            return
        model: type[BaseModel] = ChatCompletionRequest if template == CHAT else ExecuteRequest
        try:
            parsed = model.model_validate_json(body or b"null")
        except ValidationError:  # the app answers it, in its own words
            await self.app(scope, _replaying(body, receive), send)
            return
        scope["route"] = ROUTES[template]  # for the request metrics, traces and logs
        scope["path_params"] = {"agent_id": agent_id} if agent_id else {}
        try:
            response = await self._endpoint(template, agent_id, parsed, request)
        except CBError as err:
            response = await errors.on_cb_error(request, err)
        await response(scope, receive, send)

    async def _endpoint(
        self, template: str, agent_id: str, body: Any, request: Request
    ) -> Response:
        headers = request.headers
        tenant, authorization = headers.get("x-tenant-id"), headers.get("authorization")
        key = headers.get("idempotency-key")
        runtime, admission = self.runtime, self.admission
        if template == CHAT:
            who = await key_principal(request, tenant, authorization)
            return await chat_completions.chat_completions(
                request, body, who, runtime, admission, key
            )
        who = await tenant_principal(request, tenant, authorization)
        if template.endswith("/stream"):
            return await agents.execute_stream(agent_id, body, who, runtime, admission, key)
        return await agents.execute(agent_id, body, request, who, runtime, admission, key)


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
