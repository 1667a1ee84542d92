"""Tools: the tenant's MCP servers and every tool its agents can list."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.auth import Caller
from api.runtime import Rt
from domain.schemas import McpServerCreate

router = APIRouter(tags=["tools"])


@router.post("/api/v1/mcp/servers", status_code=201)
async def register_server(body: McpServerCreate, who: Caller, runtime: Rt) -> Any:
    """Register an MCP server (stdio or streamable HTTP); its secrets are stored encrypted."""
    who.require("tenant:admin")
    tenant = runtime.tenant(who.tenant_id)
    return await tenant.register_mcp_server(body.server(), body.secrets(), who.by)


@router.get("/api/v1/mcp/servers")
async def list_servers(who: Caller, runtime: Rt) -> Any:
    who.require("agents:read")
    return await runtime.tenant(who.tenant_id).list_mcp_servers()


@router.delete("/api/v1/mcp/servers/{server_id}")
async def remove_server(server_id: str, who: Caller, runtime: Rt) -> Any:
    who.require("tenant:admin")
    return await runtime.tenant(who.tenant_id).remove_mcp_server(server_id, who.by)


@router.post("/api/v1/mcp/servers/{server_id}/refresh")
async def refresh_server(server_id: str, who: Caller, runtime: Rt) -> Any:
    """List the server's tools again now."""
    who.require("agents:write")
    return await runtime.tenant(who.tenant_id).refresh_mcp_server(server_id)


@router.get("/api/v1/tools")
async def list_tools(who: Caller, runtime: Rt) -> Any:
    """Built-in tools and the tenant's MCP tools: name, description, input_schema, source."""
    who.require("agents:read")
    return await runtime.tenant(who.tenant_id).list_tools()
