"""MCP server and tool queries and mutations (new; the legacy schema had none)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.context import tenant, who
from api.graphql.tool_types import (
    McpServerGQL,
    McpServerInput,
    ToolGQL,
    server_to_gql,
    tool_to_gql,
)
from domain.schemas import McpServerCreate


@strawberry.type
class ToolQueries:
    @strawberry.field
    async def mcp_servers(self, info: Info) -> list[McpServerGQL]:
        """The tenant's MCP servers with health and tool count (never their secrets)."""
        caller = who(info)
        caller.require("agents:read")
        found = await tenant(info, caller).list_mcp_servers()
        return [server_to_gql(view) for view in found["servers"]]

    @strawberry.field
    async def tools(self, info: Info) -> list[ToolGQL]:
        """Built-in tools and the tenant's MCP tools, by the names agents list."""
        caller = who(info)
        caller.require("agents:read")
        found = await tenant(info, caller).list_tools()
        return [tool_to_gql(view) for view in found["tools"]]


@strawberry.type
class ToolMutations:
    @strawberry.mutation
    async def register_mcp_server(self, info: Info, input: McpServerInput) -> McpServerGQL:  # noqa: A002
        """Register an MCP server, as `POST /api/v1/mcp/servers` does."""
        caller = who(info)
        caller.require("tenant:admin")
        body = McpServerCreate.model_validate(input.body())
        view = await tenant(info, caller).register_mcp_server(
            body.server(), body.secrets(), caller.by
        )
        return server_to_gql(view)

    @strawberry.mutation
    async def remove_mcp_server(self, info: Info, id: str) -> bool:  # noqa: A002
        caller = who(info)
        caller.require("tenant:admin")
        await tenant(info, caller).remove_mcp_server(id, caller.by)
        return True
