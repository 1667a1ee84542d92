"""OpenAI's door: `POST /v1/chat/completions`, whole and streamed, as the official SDKs expect.

Each call is an execution (kind `chat_completion`) under the tenant's limits and routing;
its routing facts travel in `x-cb-*` headers so the body stays OpenAI's.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.admission import Admitting
from api.auth import KeyCaller
from api.disconnects import CLIENT_GONE, ClientGone, unless_disconnected
from api.idempotency import IdempotencyKey, keyed
from api.responses import FastJSONResponse
from api.runtime import Rt
from api.streaming import sse_response
from domain.chat_completions import ChatCompletionRequest, chat_headers, completion

router = APIRouter(tags=["openai"])
HEARTBEAT_S = 15.0


@router.post("/v1/chat/completions")
async def chat_completions(
    request: Request,
    body: ChatCompletionRequest,
    who: KeyCaller,
    runtime: Rt,
    admission: Admitting,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A chat completion for a virtual or concrete model, or `agent:<agent_id>`."""
    who.require("agents:execute")
    job = keyed({**body.as_job(), "caller": who.actor}, idempotency_key)
    agent_id = body.agent_id()
    execution_id = str(uuid.uuid4())
    tenant = runtime.tenant(who.tenant_id)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    async with admission.admitted(who.tenant_id, runtime.config().ingress, body.stream):
        if body.stream:
            opened = await tenant.complete_chat_stream(job, agent_id, execution_id, include_usage)
            return sse_response(opened, HEARTBEAT_S)
        try:
            reply = await unless_disconnected(
                request, tenant.complete_chat(job, agent_id, execution_id)
            )
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
    metadata = reply.value.get("metadata") or {}
    headers = {
        **reply.headers,
        **chat_headers(
            reply.value["execution_id"], metadata.get("model_resolved"), metadata.get("provider")
        ),
    }
    return FastJSONResponse(completion(reply.value), headers=headers)
