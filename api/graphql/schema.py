"""The GraphQL schema and its FastAPI router; every resolver is tenant-scoped."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import strawberry
from fastapi import Request
from graphql import GraphQLError
from strawberry.fastapi import GraphQLRouter
from strawberry.types import ExecutionContext, Info

from api.auth import Caller, Principal
from api.clients import TenantClient
from api.errors import audit_refusal
from api.graphql.legacy_types import (
    AgentDefinitionGQL,
    AgentDefinitionInput,
    LlmProviderGQL,
    agent_to_gql,
    definition_from_input,
    provider_to_gql,
)
from api.graphql.tool_types import (
    McpServerGQL,
    McpServerInput,
    ToolGQL,
    server_to_gql,
    tool_to_gql,
)
from api.provider_views import provider_views
from api.runtime import Rt, Runtime
from domain.errors import CBError, NotFound
from domain.schemas import McpServerCreate


def _who(info: Info) -> Principal:
    return info.context["principal"]


def _runtime(info: Info) -> Runtime:
    return info.context["runtime"]


def _tenant(info: Info, who: Principal) -> TenantClient:
    """The client of the caller's tenant actor."""
    return _runtime(info).tenant(who.tenant_id)


@strawberry.type
class Query:
    @strawberry.field
    def health(self) -> str:
        return "ok"

    @strawberry.field
    async def agents(self, info: Info) -> list[AgentDefinitionGQL]:
        who = _who(info)
        who.require("agents:read")
        views = await _tenant(info, who).list_agents()
        return [agent_to_gql(v) for v in views]

    @strawberry.field
    async def agent(self, info: Info, id: str) -> AgentDefinitionGQL | None:  # noqa: A002
        who = _who(info)
        who.require("agents:read")
        try:
            return agent_to_gql(await _tenant(info, who).get_agent(id))
        except NotFound:
            return None

    @strawberry.field
    async def llm_providers(self, info: Info) -> list[LlmProviderGQL]:
        """The configured providers, with their models and health."""
        _who(info).require("agents:read")
        times = _times(_runtime(info))
        views = await provider_views(_runtime(info))
        return [provider_to_gql(view, *times) for view in views]

    @strawberry.field
    async def llm_provider(self, info: Info, id: str) -> LlmProviderGQL | None:  # noqa: A002
        _who(info).require("agents:read")
        found = await provider_views(_runtime(info), id)
        return provider_to_gql(found[0], *_times(_runtime(info))) if found else None

    @strawberry.field
    async def mcp_servers(self, info: Info) -> list[McpServerGQL]:
        """The tenant's MCP servers with health and tool count (never their secrets)."""
        who = _who(info)
        who.require("agents:read")
        found = await _tenant(info, who).list_mcp_servers()
        return [server_to_gql(view) for view in found["servers"]]

    @strawberry.field
    async def tools(self, info: Info) -> list[ToolGQL]:
        """Built-in tools and the tenant's MCP tools, by the names agents list."""
        who = _who(info)
        who.require("agents:read")
        found = await _tenant(info, who).list_tools()
        return [tool_to_gql(view) for view in found["tools"]]


def _times(runtime: Runtime) -> tuple[str, str]:
    """When the configuration was written (the providers' legacy created/updated), and now."""
    written = os.path.getmtime(runtime.settings.config_path)
    now = dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(written, dt.UTC).isoformat(), now.isoformat()


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def create_agent(self, info: Info, input: AgentDefinitionInput) -> AgentDefinitionGQL:  # noqa: A002
        who = _who(info)
        who.require("agents:write")
        legacy_credential = {
            "provider_type": input.llm_provider.provider_type,
            "api_key": input.llm_provider.api_key,
        }
        definition = definition_from_input(input)
        view = await _tenant(info, who).create_agent(definition, legacy_credential, who.by)
        return agent_to_gql(view)

    @strawberry.mutation
    async def register_mcp_server(self, info: Info, input: McpServerInput) -> McpServerGQL:  # noqa: A002
        """Register an MCP server, as `POST /api/v1/mcp/servers` does."""
        who = _who(info)
        who.require("tenant:admin")
        body = McpServerCreate.model_validate(input.body())
        view = await _tenant(info, who).register_mcp_server(body.server(), body.secrets(), who.by)
        return server_to_gql(view)

    @strawberry.mutation
    async def remove_mcp_server(self, info: Info, id: str) -> bool:  # noqa: A002
        who = _who(info)
        who.require("tenant:admin")
        await _tenant(info, who).remove_mcp_server(id, who.by)
        return True


class _AuditedSchema(strawberry.Schema):
    """A refusal inside a resolver (a missing scope) goes to the audit trail as it does on
    REST, and is not logged as a server error; anything else is logged as before."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        request = context.get("request") if isinstance(context, dict) else None
        unexpected = []
        for error in errors:
            refusal = error.original_error
            if not isinstance(refusal, CBError):
                unexpected.append(error)
            elif refusal.audit and request is not None:
                audit_refusal(request, refusal.audit)
        super().process_errors(unexpected, execution_context)


schema = _AuditedSchema(query=Query, mutation=Mutation)


async def _context(who: Caller, request: Request, runtime: Rt) -> dict[str, Any]:
    """What every resolver gets: the authenticated caller, the request and the runtime."""
    return {"principal": who, "request": request, "runtime": runtime}


def graphql_router() -> GraphQLRouter:
    return GraphQLRouter(schema, context_getter=_context, path="/graphql")
