"""Executions and state agent configurations in the legacy shape: executions read from the
history projection, configurations stored as the tenant's events, triggers run in the
tenant's actor."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.context import runtime, tenant, who
from api.graphql.workflow_types import (
    AgentExecutionGQL,
    StateAgentConfigGQL,
    StateAgentConfigInput,
    TriggerStateAgentsInput,
    config_from_input,
    config_to_gql,
    execution_to_gql,
    pending_to_gql,
)
from domain.errors import InvalidRequest

MAX_RESOURCE_EXECUTIONS = 500  # newest first


async def _executions(info: Info, **filters: Any) -> list[dict[str, Any]]:
    """The caller's tenant's executions from history, each with its input."""
    caller = who(info)
    caller.require("executions:read")
    return await _history(info, caller.tenant_id, **filters)


async def _history(info: Info, tenant_id: str, **filters: Any) -> list[dict[str, Any]]:
    return await runtime(info).read_models.list_executions(
        tenant_id, {**filters, "with_input": True}
    )


@strawberry.type
class ExecutionQueries:
    @strawberry.field
    async def agent_execution(self, info: Info, id: str) -> AgentExecutionGQL | None:  # noqa: A002
        found = await _executions(info, execution_id=id, limit=1)
        return execution_to_gql(found[0]) if found else None

    @strawberry.field
    async def resource_executions(self, info: Info, resource_id: str) -> list[AgentExecutionGQL]:
        """The resource's executions, newest first (at most 500)."""
        found = await _executions(info, resource_id=resource_id, limit=MAX_RESOURCE_EXECUTIONS)
        return [execution_to_gql(view) for view in found]

    @strawberry.field
    async def state_agent_configs(self, info: Info, state_id: str) -> list[StateAgentConfigGQL]:
        caller = who(info)
        caller.require("agents:read")
        configs = await tenant(info, caller).list_state_agent_configs(state_id)
        return [config_to_gql(c) for c in configs]


@strawberry.type
class ExecutionMutations:
    @strawberry.mutation
    async def create_state_agent_config(
        self,
        info: Info,
        input: StateAgentConfigInput,  # noqa: A002
    ) -> StateAgentConfigGQL:
        caller = who(info)
        caller.require("agents:write")
        config = await tenant(info, caller).create_state_agent_config(
            config_from_input(input), caller.by
        )
        return config_to_gql(config)

    @strawberry.mutation
    async def trigger_state_agents(
        self,
        info: Info,
        input: TriggerStateAgentsInput,  # noqa: A002
    ) -> list[AgentExecutionGQL]:
        """Run the enabled configurations of the state (by default the resource's last) for
        the resource, with `data` as its data; the executions they made."""
        caller = who(info)
        caller.require("agents:execute")
        if not input.resource_id.strip():
            raise InvalidRequest("resourceId must not be empty")
        state_id = input.state_id or await _last_state(info, caller.tenant_id, input.resource_id)
        data = input.data if input.data is not None else {}
        answers = await tenant(info, caller).trigger_state_agents(input.resource_id, state_id, data)
        executions = []
        for answer in answers:
            if not answer["ran"]:
                executions.append(pending_to_gql(answer))
                continue
            found = await _history(
                info, caller.tenant_id, execution_id=answer["execution_id"], limit=1
            )
            executions.extend(execution_to_gql(view) for view in found)
        return executions


async def _last_state(info: Info, tenant_id: str, resource_id: str) -> str:
    """The state the resource was last triggered in (its newest execution with a state)."""
    found = await _history(info, tenant_id, resource_id=resource_id, limit=MAX_RESOURCE_EXECUTIONS)
    for view in found:
        if view.get("state_id"):
            return view["state_id"]
    raise InvalidRequest(
        f"resource {resource_id!r} has not been triggered in any state yet: give stateId"
    )
