"""Agent management beyond the legacy schema (PED §12.2): a filtered, cursor-paginated
listing, partial update and deletion; each as its REST route does it, with its scope."""

from __future__ import annotations

from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.relay import PageInfo
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case

from api.graphql import cursors
from api.graphql.context import tenant, who
from api.graphql.legacy_types import AgentDefinitionGQL, agent_to_gql
from domain.errors import InvalidRequest
from domain.schemas import AgentUpdate


@strawberry.input(description="Every given condition must hold.")
class AgentFilterInput:
    name: str | None = strawberry.field(default=None, description="part of the name, any case")
    model: str | None = strawberry.field(default=None, description="the model, exactly")
    tag: str | None = None
    capability: str | None = None
    tool: str | None = None


def matches(view: dict[str, Any], where: AgentFilterInput | None) -> bool:
    """Whether an agent (as the API shows it) passes the filter."""
    if where is None:
        return True
    return (
        (where.name is None or where.name.casefold() in view["name"].casefold())
        and (where.model is None or view["model"] == where.model)
        and (where.tag is None or where.tag in (view.get("tags") or []))
        and (where.capability is None or where.capability in (view.get("capabilities") or []))
        and (where.tool is None or where.tool in (view.get("tools") or []))
    )


def _position(view: dict[str, Any]) -> tuple[str, str]:
    return view["created_at"], view["id"]


@strawberry.type
class AgentEdgeGQL:
    cursor: str
    node: AgentDefinitionGQL


@strawberry.type(description="A page of agents, oldest first.")
class AgentConnectionGQL:
    edges: list[AgentEdgeGQL]
    page_info: PageInfo
    total_count: int = strawberry.field(description="agents that pass the filter")


def page_of(
    views: list[dict[str, Any]], where: AgentFilterInput | None, first: int, after: str | None
) -> AgentConnectionGQL:
    """The agents that pass `where`, oldest first, the `first` after the cursor `after`."""
    size = cursors.page_size(first)
    passing = sorted((v for v in views if matches(v, where)), key=_position)
    start = tuple(cursors.decode(after, 2)) if after else None
    rest = [v for v in passing if start is None or _position(v) > start]
    edges = [AgentEdgeGQL(cursor=cursors.encode(*_position(v)), node=agent_to_gql(v))
             for v in rest[:size]]  # fmt: skip
    page = PageInfo(
        has_next_page=len(rest) > size,
        has_previous_page=len(rest) < len(passing),
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return AgentConnectionGQL(edges=edges, page_info=page, total_count=len(passing))


@strawberry.input(description="Generation parameters; given ones replace the agent's, as on REST.")
class AgentParametersInput:
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    seed: int | None = None


@strawberry.input(description="The fields to change (`PATCH /api/v1/agents/{id}`); null or"
                  " absent fields stay as they are.")  # fmt: skip
class AgentUpdateInput:
    name: str | None = None
    description: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    user_template: str | None = None
    context_instructions: str | None = None
    parameters: AgentParametersInput | None = None
    tools: list[str] | None = None
    capabilities: list[str] | None = None
    tags: list[str] | None = None


def changes_of(data: AgentUpdateInput) -> dict[str, Any]:
    """The REST update an input stands for, validated by the REST schema."""
    given = {k: v for k, v in vars(data).items() if v is not None}
    if data.parameters is not None:
        given["parameters"] = {k: v for k, v in vars(data.parameters).items() if v is not None}
    try:
        body = AgentUpdate.model_validate(given)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(to_camel_case(str(p)) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        text = "; ".join(f"input.{p['field']}: {p['message']}" for p in problems)
        raise InvalidRequest(f"invalid input: {text}", details={"problems": problems}) from None
    changes = body.model_dump(exclude_unset=True)
    if body.parameters is not None:
        changes["parameters"] = body.parameters.set_values()
    return changes


@strawberry.type(description="What `deleteAgent` did.")
class DeleteAgentResultGQL:
    success: bool
    id: strawberry.ID


@strawberry.type
class AgentManagementQueries:
    @strawberry.field(description="The tenant's agents that pass `filter`, oldest first.")
    async def agent_list(
        self,
        info: Info,
        filter: AgentFilterInput | None = None,  # noqa: A002
        first: int = 50,
        after: str | None = None,
    ) -> AgentConnectionGQL:
        caller = who(info)
        caller.require("agents:read")
        return page_of(await tenant(info, caller).list_agents(), filter, first, after)


@strawberry.type
class AgentManagementMutations:
    @strawberry.mutation(description="Change the given fields of an agent (a new version).")
    async def update_agent(
        self,
        info: Info,
        id: strawberry.ID,  # noqa: A002
        input: AgentUpdateInput,  # noqa: A002
    ) -> AgentDefinitionGQL:
        caller = who(info)
        caller.require("agents:write")
        view = await tenant(info, caller).update_agent(str(id), changes_of(input), caller.by)
        return agent_to_gql(view)

    @strawberry.mutation(description="Delete an agent; an unknown id is an error.")
    async def delete_agent(self, info: Info, id: strawberry.ID) -> DeleteAgentResultGQL:  # noqa: A002
        caller = who(info)
        caller.require("agents:write")
        done = await tenant(info, caller).delete_agent(str(id), caller.by)
        return DeleteAgentResultGQL(success=bool(done["deleted"]), id=strawberry.ID(done["id"]))
