"""Agents: create, list, read, update, delete — and execute."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from api.admission import Admitting
from api.auth import Caller
from api.disconnects import CLIENT_GONE, ClientGone, unless_disconnected
from api.idempotency import IdempotencyKey, keyed
from api.responses import FastJSONResponse
from api.runtime import Rt
from api.streaming import sse_response
from domain.schemas import (
    AgentCreate,
    AgentUpdate,
    ExecuteRequest,
    StreamOptions,
    agent_definition,
    execution_request,
    reference_definitions,
)

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.post("", status_code=201)
async def create_agent(
    body: AgentCreate, who: Caller, runtime: Rt, idempotency_key: IdempotencyKey = None
) -> Any:
    who.require("agents:write")
    tenant = runtime.tenant(who.tenant_id)
    if idempotency_key is None:
        return await tenant.create_agent(agent_definition(body), None, who.by)
    reply = await tenant.create_agent_once(agent_definition(body), who.by, idempotency_key)
    return JSONResponse(reply.value, status_code=201, headers=reply.headers)


@router.post("/reference")
async def install_reference_agents(who: Caller, runtime: Rt) -> dict[str, Any]:
    """Install the four reference agents of PED 13.1 in the caller's tenant (idempotent: an
    agent of the same name is left as it is)."""
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).install_agents(reference_definitions(), who.by)


@router.get("")
async def list_agents(who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:read")
    return {"agents": await runtime.tenant(who.tenant_id).list_agents()}


@router.get("/{agent_id}")
async def get_agent(agent_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:read")
    return await runtime.tenant(who.tenant_id).get_agent(agent_id)


@router.patch("/{agent_id}")
async def update_agent(
    agent_id: str, body: AgentUpdate, who: Caller, runtime: Rt
) -> dict[str, Any]:
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).update_agent(agent_id, body.changes(), who.by)


@router.delete("/{agent_id}")
async def delete_agent(agent_id: str, who: Caller, runtime: Rt) -> dict[str, Any]:
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).delete_agent(agent_id, who.by)


@router.post("/{agent_id}/execute")
async def execute(
    agent_id: str,
    body: ExecuteRequest,
    http: Request,
    who: Caller,
    runtime: Rt,
    admission: Admitting,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Run the agent once and answer with the whole result (a client that goes away first
    cancels it, unless it sent an Idempotency-Key: then it runs on for the retry)."""
    who.require("agents:execute")
    request = keyed(execution_request(body, who.actor), idempotency_key)
    async with admission.admitted(who.tenant_id, runtime.config().ingress):
        try:
            reply = await unless_disconnected(
                http, runtime.tenant(who.tenant_id).execute(agent_id, request)
            )
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
    return FastJSONResponse(reply.value, headers=reply.headers)


@router.post("/{agent_id}/execute/stream")
async def execute_stream(
    agent_id: str,
    body: ExecuteRequest,
    who: Caller,
    runtime: Rt,
    admission: Admitting,
    idempotency_key: IdempotencyKey = None,
) -> StreamingResponse:
    """Run the agent and stream its steps as Server-Sent Events (a repeat under the same
    Idempotency-Key joins the first's stream from its start)."""
    who.require("agents:execute")
    options = body.stream_options or StreamOptions()
    request = keyed(execution_request(body, who.actor), idempotency_key)
    cancel_on_disconnect = options.on_disconnect == "cancel"
    # the stream holds an ingress slot until it has started
    async with admission.admitted(who.tenant_id, runtime.config().ingress, stream=True):
        opened = await runtime.tenant(who.tenant_id).execute_stream(
            agent_id, request, cancel_on_disconnect
        )
    return sse_response(opened, options.heartbeat_s)
