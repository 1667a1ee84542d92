"""The legacy GraphQL types of executions and state agent configurations (names and
nullability exactly as the legacy schema has them), and their conversions."""

from __future__ import annotations

import dataclasses
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from api.graphql.legacy_types import LlmConfigGQL, LlmConfigInput
from domain.state_agents import legacy_status, output_fields
from domain.times import iso

UNTAGGED = "unknown"  # the legacy server's resourceId/stateId of an execution without them


@strawberry.enum
class AgentExecutionStatusGQL(Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"


@strawberry.type
class AgentExecutionGQL:
    id: str
    agent_id: str
    resource_id: str
    state_id: str
    status: AgentExecutionStatusGQL
    input_data: JSON
    output_data: JSON | None
    error_message: str | None
    started_at: str
    completed_at: str | None
    duration_ms: int | None
    retry_count: int


@strawberry.type
class StateAgentScheduleGQL:
    initial_delay_seconds: int | None = None
    interval_seconds: int | None = None
    max_executions: int | None = None


@strawberry.type
class AgentRetryConfigGQL:
    max_attempts: int
    backoff_seconds: int
    retry_on_errors: list[str]


@strawberry.type
class StateAgentConfigGQL:
    id: str
    state_id: str
    agent_id: str
    llm_config: LlmConfigGQL | None
    input_mapping: JSON
    output_mapping: JSON
    auto_activity: str | None
    schedule: StateAgentScheduleGQL | None
    retry_config: AgentRetryConfigGQL | None
    enabled: bool
    created_at: str
    updated_at: str


@strawberry.input
class StateAgentScheduleInput:
    initial_delay_seconds: int | None = None
    interval_seconds: int | None = None
    max_executions: int | None = None


@strawberry.input
class AgentRetryConfigInput:
    max_attempts: int
    backoff_seconds: int
    retry_on_errors: list[str]


@strawberry.input
class StateAgentConfigInput:
    state_id: str
    agent_id: str
    input_mapping: JSON
    output_mapping: JSON
    enabled: bool
    llm_config: LlmConfigInput | None = None
    auto_activity: str | None = None
    schedule: StateAgentScheduleInput | None = None
    retry_config: AgentRetryConfigInput | None = None


@strawberry.input
class TriggerStateAgentsInput:
    resource_id: str
    state_id: str | None = strawberry.field(
        default=None,
        description="The state whose configurations run; by default the state the resource "
        "was last triggered in.",
    )
    data: JSON | None = strawberry.field(
        default=None, description="The resource data the input mappings read ({} if omitted)."
    )


def config_from_input(data: StateAgentConfigInput) -> dict[str, Any]:
    """The configuration a legacy input stands for, with snake_case keys."""
    return dataclasses.asdict(data)


def config_to_gql(config: dict[str, Any]) -> StateAgentConfigGQL:
    llm, schedule = config.get("llm_config"), config.get("schedule")
    retry = config.get("retry_config")
    return StateAgentConfigGQL(
        id=config["id"],
        state_id=config["state_id"],
        agent_id=config["agent_id"],
        llm_config=LlmConfigGQL(**{**llm, "stop_sequences": llm.get("stop_sequences") or []})
        if llm
        else None,
        input_mapping=config["input_mapping"],
        output_mapping=config["output_mapping"],
        auto_activity=config.get("auto_activity"),
        schedule=StateAgentScheduleGQL(**schedule) if schedule else None,
        retry_config=AgentRetryConfigGQL(**retry) if retry else None,
        enabled=config["enabled"],
        created_at=config["created_at"],
        updated_at=config.get("updated_at") or config["created_at"],
    )


def execution_to_gql(view: dict[str, Any]) -> AgentExecutionGQL:
    """A history view (`projections.history`, with its `input`) in the legacy shape."""
    error = view.get("error") or {}
    imported = (view.get("metadata") or {}).get("imported")
    given = view.get("input")
    if imported is not None:  # as the legacy system recorded it
        status, output = imported["legacy_status"], imported["output"]
    else:
        given = dict(given or {})
        status = legacy_status(view["status"], error.get("type"))
        output = _output(view, given.pop("output_mapping", None))
    duration = view.get("duration_ms")
    return AgentExecutionGQL(
        id=view["execution_id"],
        agent_id=view.get("agent_id") or "",
        resource_id=view.get("resource_id") or UNTAGGED,
        state_id=view.get("state_id") or UNTAGGED,
        status=AgentExecutionStatusGQL(status),
        input_data=given if given is not None else {},
        output_data=output,
        error_message=error.get("message"),
        started_at=iso(view["started_at"]),
        completed_at=iso(view["completed_at"]) if view.get("completed_at") else None,
        duration_ms=round(duration) if duration is not None else None,
        retry_count=view.get("retry_count") or 0,
    )


def pending_to_gql(answer: dict[str, Any]) -> AgentExecutionGQL:
    """A scheduled run that has not started: its id, and when it is due as `startedAt`."""
    return AgentExecutionGQL(
        id=answer["execution_id"],
        agent_id=answer["agent_id"],
        resource_id=answer["resource_id"],
        state_id=answer["state_id"],
        status=AgentExecutionStatusGQL.PENDING,
        input_data={"input": answer["input"]},
        output_data=None,
        error_message=None,
        started_at=iso(answer["due_at"]) if answer.get("due_at") else "",
        completed_at=None,
        duration_ms=None,
        retry_count=0,
    )


def _output(view: dict[str, Any], mapping: dict[str, str] | None) -> dict[str, Any] | None:
    """A completed execution's answer, and the resource fields its output mapping fills."""
    response = view.get("response")
    if view["status"] != "completed" or not response:
        return None
    output = {
        "content": response.get("content"),
        "finish_reason": response.get("finish_reason"),
        "tool_calls": response.get("tool_calls") or [],
    }
    if mapping:
        output["mapped_fields"] = output_fields(mapping, response.get("content"))
    return output
