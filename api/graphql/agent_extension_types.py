"""The GraphQL types of the agent's multi-tenant fields (PED §12.1), and how each is made
from what the REST API shows."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, get_args

import strawberry
from strawberry.relay import PageInfo
from strawberry.scalars import JSON

from domain.schemas import StreamOptions

# what a stream of `POST …/execute/stream` may carry (docs/api.md, "Streaming")
STREAM_EVENTS = (
    "execution_start",
    "content_chunk",
    "tool_call",
    "tool_call_delta",
    "tool_result",
    "usage_update",
    "execution_complete",
    "error",
)


@strawberry.type(description="Absolute REST URLs that execute the agent and read its runs.")
class ExecutionEndpointsGQL:
    execute: str = strawberry.field(description="POST: run once, answer the whole result")
    stream: str = strawberry.field(description="POST: run and stream Server-Sent Events")
    history: str = strawberry.field(description="GET: the agent's executions, newest first")
    resume: str = strawberry.field(
        description="GET: rejoin a streamed execution (`{execution_id}` filled in by the"
        " client; `Last-Event-ID` says after which event)"
    )


@strawberry.type(description="What the streaming endpoint offers.")
class StreamingConfigGQL:
    endpoint: str
    protocol: str
    event_types: list[str]
    heartbeat_seconds: float = strawberry.field(description="the default heartbeat interval")
    min_heartbeat_seconds: float
    max_heartbeat_seconds: float
    resumable: bool
    resume_header: str
    on_disconnect_options: list[str]
    default_on_disconnect: str
    include_usage_default: bool


def streaming_config(stream_url: str) -> StreamingConfigGQL:
    """The stream endpoint's options, read from the request schema that accepts them."""
    fields = StreamOptions.model_fields
    heartbeat = fields["heartbeat_s"]
    bounds = {type(m).__name__: m for m in heartbeat.metadata}
    return StreamingConfigGQL(
        endpoint=stream_url,
        protocol="text/event-stream",
        event_types=list(STREAM_EVENTS),
        heartbeat_seconds=heartbeat.default,
        min_heartbeat_seconds=bounds["Ge"].ge,
        max_heartbeat_seconds=bounds["Le"].le,
        resumable=True,
        resume_header="Last-Event-ID",
        on_disconnect_options=list(get_args(fields["on_disconnect"].annotation)),
        default_on_disconnect=fields["on_disconnect"].default,
        include_usage_default=fields["include_usage"].default,
    )


@strawberry.type(description="How the tenant resolves the agent's model now.")
class VirtualModelMappingGQL:
    name: str = strawberry.field(description="the model name the agent sends")
    kind: str = strawberry.field(description="`virtual` or `concrete`")
    source: str = strawberry.field(description="`tenant` (its own mapping), `platform`")
    strategy: str | None
    task: str | None
    candidates: list[str]
    resolves_to: str | None = strawberry.field(description="the model it resolves to now")
    provider: str | None
    fallbacks: list[str]
    capabilities: list[str]
    available: bool
    unavailable_reason: str | None


def mapping_of(model: str, listing: dict[str, Any]) -> list[VirtualModelMappingGQL]:
    """The agent's model as `GET /api/v1/models` shows it to the tenant (none when the
    tenant may not use it)."""
    entry = next((m for m in listing["models"] if m["id"] == model), None)
    if entry is None:
        return []
    if entry["kind"] == "virtual":
        return [
            VirtualModelMappingGQL(
                name=model, kind="virtual", source=entry["source"], strategy=entry["strategy"],
                task=entry["task"], candidates=entry["candidates"],
                resolves_to=entry["resolves_to"], provider=entry["provider"],
                fallbacks=entry["fallbacks"], capabilities=entry["capabilities"],
                available=entry["resolves_to"] is not None,
                unavailable_reason=entry.get("unavailable"),
            )
        ]  # fmt: skip
    return [
        VirtualModelMappingGQL(
            name=model, kind="concrete", source="platform", strategy=None, task=None,
            candidates=[model], resolves_to=model, provider=entry["provider"], fallbacks=[],
            capabilities=entry["capabilities"], available=entry["available"],
            unavailable_reason=None if entry["available"] else f"breaker {entry['breaker']}",
        )
    ]  # fmt: skip


@strawberry.type
class ToolHealthGQL:
    status: str
    last_error: str | None = None


@strawberry.type(description="A tool the agent names: where it comes from, its schema, health.")
class ToolConfigurationGQL:
    name: str
    description: str
    source: str = strawberry.field(description="`builtin`, or the MCP server's name")
    input_schema: JSON
    health: ToolHealthGQL


def tool_configurations(names: list[str], listing: dict[str, Any]) -> list[ToolConfigurationGQL]:
    """The agent's tools, in its order; one no longer offered shows as `missing`."""
    known = {tool["name"]: tool for tool in listing["tools"]}
    out = []
    for name in names:
        tool = known.get(name)
        if tool is None:
            out.append(ToolConfigurationGQL(name=name, description="", source="unknown",
                                            input_schema={}, health=ToolHealthGQL(
                                                status="missing")))  # fmt: skip
            continue
        health = tool.get("health") or {}
        out.append(
            ToolConfigurationGQL(
                name=name,
                description=tool["description"],
                source=tool["source"],
                input_schema=tool["input_schema"],
                health=ToolHealthGQL(
                    status=health.get("status", "ready"), last_error=health.get("last_error")
                ),
            )
        )
    return out


@strawberry.enum
class MetricsWindow(enum.Enum):
    LAST_HOUR = 3600
    LAST_24_HOURS = 86_400
    LAST_7_DAYS = 7 * 86_400
    LAST_30_DAYS = 30 * 86_400


@strawberry.type
class LatencyGQL:
    p50: float | None
    p95: float | None
    p99: float | None
    mean: float | None


@strawberry.type(description="The agent's ended executions in whole hours covering the window.")
class PerformanceMetricsGQL:
    window: MetricsWindow
    since: str
    until: str
    executions: int
    succeeded: int
    failed: int
    cancelled: int
    success_rate: float | None
    latency_ms: LatencyGQL
    ttft_ms: LatencyGQL
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


def _latency(figures: dict[str, Any] | None) -> LatencyGQL:
    figures = figures or {}
    return LatencyGQL(p50=figures.get("p50"), p95=figures.get("p95"), p99=figures.get("p99"),
                      mean=figures.get("mean"))  # fmt: skip


def performance(
    window: MetricsWindow, since: float, until: float, rows: list[dict[str, Any]]
) -> PerformanceMetricsGQL:
    """The one ungrouped analytics row (none when nothing ended in the window)."""
    row = rows[0] if rows else {}
    return PerformanceMetricsGQL(
        window=window,
        since=_iso(since),
        until=_iso(until),
        executions=row.get("executions", 0),
        succeeded=row.get("succeeded", 0),
        failed=row.get("failed", 0),
        cancelled=row.get("cancelled", 0),
        success_rate=row.get("success_rate"),
        latency_ms=_latency(row.get("duration_ms")),
        ttft_ms=_latency(row.get("ttft_ms")),
        prompt_tokens=row.get("prompt_tokens", 0),
        completion_tokens=row.get("completion_tokens", 0),
        total_tokens=row.get("total_tokens", 0),
        cost_usd=row.get("cost_usd", 0.0),
    )


@strawberry.enum
class ExecutionStatus(enum.Enum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


@strawberry.type(description="One execution of the agent, as the history projection holds it.")
class ExecutionSummaryGQL:
    id: str
    agent_id: str | None
    kind: str
    status: ExecutionStatus
    stream: bool
    model_requested: str | None
    model_resolved: str | None
    provider: str | None
    started_at: str | None
    completed_at: str | None
    duration_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    error_type: str | None
    error_message: str | None


def execution_summary(view: dict[str, Any]) -> ExecutionSummaryGQL:
    usage, error = view["usage"], view["error"] or {}
    return ExecutionSummaryGQL(
        id=view["execution_id"],
        agent_id=view["agent_id"],
        kind=view["kind"],
        status=ExecutionStatus(view["status"]),
        stream=view["stream"],
        model_requested=view["model_requested"],
        model_resolved=view["model_resolved"],
        provider=view["provider"],
        started_at=_iso(view["started_at"]),
        completed_at=_iso(view["completed_at"]),
        duration_ms=view["duration_ms"],
        prompt_tokens=usage["prompt_tokens"],
        completion_tokens=usage["completion_tokens"],
        total_tokens=usage["total_tokens"],
        cost_usd=usage["cost_usd"],
        error_type=error.get("type"),
        error_message=error.get("message"),
    )


@strawberry.type
class ExecutionEdgeGQL:
    cursor: str
    node: ExecutionSummaryGQL


@strawberry.type(description="A page of executions, newest first.")
class ExecutionConnectionGQL:
    edges: list[ExecutionEdgeGQL]
    page_info: PageInfo


def _iso(at: float | None) -> str | None:
    return None if at is None else dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
