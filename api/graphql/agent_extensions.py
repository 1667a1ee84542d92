"""The agent's multi-tenant fields (PED §12.1/§12.2), added to `AgentDefinitionGQL` by
composition: each is a strawberry field whose resolver runs only when the field is asked
for, reads the caller's tenant only, and checks the scope REST checks for the same data.

Reads shared by many agents of one response (the tenant's models and tools, the figures
of all its agents) are made once per request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.relay import PageInfo
from strawberry.types import Info

from api.graphql import cursors
from api.graphql.agent_extension_types import (
    ExecutionConnectionGQL,
    ExecutionEdgeGQL,
    ExecutionEndpointsGQL,
    ExecutionStatus,
    MetricsWindow,
    PerformanceMetricsGQL,
    StreamingConfigGQL,
    ToolConfigurationGQL,
    VirtualModelMappingGQL,
    execution_summary,
    mapping_of,
    performance,
    streaming_config,
    tool_configurations,
)
from api.graphql.context import runtime, tenant, who
from domain.schemas import SCOPES

SHARED_S = 1.0


def endpoints(base_url: str, agent_id: str) -> ExecutionEndpointsGQL:
    """The REST URLs of an agent under `base_url` (scheme, host and route prefix)."""
    base = base_url.rstrip("/")
    agent = f"{base}/api/v1/agents/{agent_id}"
    return ExecutionEndpointsGQL(
        execute=f"{agent}/execute",
        stream=f"{agent}/execute/stream",
        history=f"{base}/api/v1/executions?agent_id={agent_id}",
        resume=f"{base}/api/v1/executions/{{execution_id}}/stream",
    )


def _base_url(info: Info) -> str:
    return str(info.context["request"].base_url)


async def _once(info: Info, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
    """`read()` once per response (shared by all its agents). The context may outlive one
    operation (a WebSocket's does), so a read is reused for `SHARED_S` at most."""
    memo: dict[str, tuple[float, asyncio.Future[Any]]] = info.context.setdefault(
        "agent_extensions", {}
    )
    now = time.monotonic()
    if key not in memo or now - memo[key][0] > SHARED_S:
        memo[key] = (now, asyncio.ensure_future(read()))
    return await memo[key][1]


def _tenant_id(root: Any, info: Info) -> str:
    # the agent was read from the caller's tenant actor, which holds that tenant's only
    return who(info).tenant_id


def _tenant_permissions(root: Any, info: Info) -> list[str]:
    scopes = who(info).scopes
    return [scope for scope in SCOPES if scope in scopes]


def _execution_endpoints(root: Any, info: Info) -> ExecutionEndpointsGQL:
    return endpoints(_base_url(info), root.id)


def _streaming_config(root: Any, info: Info) -> StreamingConfigGQL:
    return streaming_config(endpoints(_base_url(info), root.id).stream)


async def _virtual_model_mappings(root: Any, info: Info) -> list[VirtualModelMappingGQL] | None:
    caller = who(info)
    caller.require("agents:read")
    listing = await _once(info, "models", tenant(info, caller).models_view)
    return mapping_of(root.llm_provider.model, listing)


async def _tool_configurations(root: Any, info: Info) -> list[ToolConfigurationGQL] | None:
    caller = who(info)
    caller.require("agents:read")
    listing = await _once(info, "tools", tenant(info, caller).list_tools)
    return tool_configurations(list(root.tools), listing)


async def _performance_metrics(
    root: Any, info: Info, window: MetricsWindow = MetricsWindow.LAST_24_HOURS
) -> PerformanceMetricsGQL | None:
    caller = who(info)
    caller.require("analytics:read")

    async def by_agent() -> tuple[float, float, list[dict[str, Any]]]:
        until = time.time()
        since = until - window.value
        rows = await runtime(info).read_models.analytics(
            "usage", caller.tenant_id, since, until,
            group_by=["agent"], filters={"agent_id": None, "model": None},
        )  # fmt: skip
        return since, until, rows

    since, until, rows = await _once(info, f"metrics:{window.name}", by_agent)
    return performance(window, since, until, [r for r in rows if r["agent_id"] == root.id])


async def _execution_history(
    root: Any,
    info: Info,
    first: int = 20,
    after: str | None = None,
    status: ExecutionStatus | None = None,
) -> ExecutionConnectionGQL | None:
    caller = who(info)
    caller.require("executions:read")
    size = cursors.page_size(first)
    before = float(cursors.decode(after, 1)[0]) if after else None
    filters = {"agent_id": root.id, "status": status.value if status else None,
               "limit": size + 1, "before": before, "kind": None}  # fmt: skip
    found = await runtime(info).read_models.list_executions(caller.tenant_id, filters)
    edges = [
        ExecutionEdgeGQL(cursor=cursors.encode(view["started_at"]), node=execution_summary(view))
        for view in found[:size]
    ]
    page = PageInfo(
        has_next_page=len(found) > size,
        has_previous_page=after is not None,
        start_cursor=edges[0].cursor if edges else None,
        end_cursor=edges[-1].cursor if edges else None,
    )
    return ExecutionConnectionGQL(edges=edges, page_info=page)


tenant_id = strawberry.field(resolver=_tenant_id, description="The agent's tenant.")
tenant_permissions = strawberry.field(
    resolver=_tenant_permissions, description="The caller's scopes on the agent."
)
execution_endpoints = strawberry.field(resolver=_execution_endpoints)
streaming_config_field = strawberry.field(resolver=_streaming_config, name="streamingConfig")
virtual_model_mappings = strawberry.field(
    resolver=_virtual_model_mappings,
    description="The tenant's effective mapping of the agent's model (scope agents:read).",
)
tool_configurations_field = strawberry.field(
    resolver=_tool_configurations,
    name="toolConfigurations",
    description="The agent's tools with source, schema and health (scope agents:read).",
)
performance_metrics = strawberry.field(
    resolver=_performance_metrics,
    description="From the metrics projection (scope analytics:read).",
)
execution_history = strawberry.field(
    resolver=_execution_history,
    description="From the history projection, newest first (scope executions:read).",
)
