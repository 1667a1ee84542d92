"""Agent queries and mutations in the legacy shape."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from api.graphql.context import tenant, who
from api.graphql.deprecation import deprecated
from api.graphql.legacy_types import (
    AgentDefinitionGQL,
    AgentDefinitionInput,
    agent_to_gql,
    definition_from_input,
)
from domain.errors import NotFound


@strawberry.type
class AgentQueries:
    @strawberry.field(deprecation_reason=deprecated("Query.agents"))
    async def agents(self, info: Info) -> list[AgentDefinitionGQL]:
        caller = who(info)
        caller.require("agents:read")
        views = await tenant(info, caller).list_agents()
        return [agent_to_gql(v) for v in views]

    @strawberry.field
    async def agent(self, info: Info, id: str) -> AgentDefinitionGQL | None:  # noqa: A002
        caller = who(info)
        caller.require("agents:read")
        try:
            return agent_to_gql(await tenant(info, caller).get_agent(id))
        except NotFound:
            return None


@strawberry.type
class AgentMutations:
    @strawberry.mutation
    async def create_agent(self, info: Info, input: AgentDefinitionInput) -> AgentDefinitionGQL:  # noqa: A002
        caller = who(info)
        caller.require("agents:write")
        if input.llm_provider.api_key:  # it becomes the tenant's key for that provider
            caller.require("tenant:admin")
        legacy_credential = {
            "provider_type": input.llm_provider.provider_type,
            "api_key": input.llm_provider.api_key,
        }
        definition = definition_from_input(input)
        view = await tenant(info, caller).create_agent(definition, legacy_credential, caller.by)
        return agent_to_gql(view)
