"""Typed stream events (`execution_start`, `content_chunk`, …), each a pydantic model with
`.type`; `event_id` is the SSE id (None on an event sent without one)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from circuit_breaker.models import ExecutionResult


class StreamEvent(BaseModel):
    """Base of every stream event."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: str
    event_id: int | None = None
    execution_id: str | None = None


class ExecutionStart(StreamEvent):
    type: Literal["execution_start"] = "execution_start"
    agent_id: str | None = None
    model_requested: str | None = None
    model_resolved: str | None = None
    provider: str | None = None


class ContentChunk(StreamEvent):
    type: Literal["content_chunk"] = "content_chunk"
    delta: str = ""


class ToolCall(StreamEvent):
    type: Literal["tool_call"] = "tool_call"
    turn: int | None = None
    call_id: str | None = Field(default=None, alias="id")
    call_type: str | None = None
    function: dict[str, Any] = {}

    @property
    def name(self) -> str | None:
        return self.function.get("name")

    @property
    def arguments(self) -> Any:
        return self.function.get("arguments")


class ToolResult(StreamEvent):
    type: Literal["tool_result"] = "tool_result"
    call_id: str | None = None
    name: str | None = None
    arguments: Any = None
    result: Any = None
    error: Any = None
    duration_ms: float | None = None


class UsageUpdate(StreamEvent):
    type: Literal["usage_update"] = "usage_update"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    estimated: bool | None = None


class AttemptRestarted(StreamEvent):
    """The runtime running the execution stopped and it runs again from the start: the
    content before this event is void, the new attempt's follows (`attempt` counts from 1)."""

    type: Literal["attempt_restarted"] = "attempt_restarted"
    attempt: int = 2
    reason: dict[str, Any] = {}


class ExecutionComplete(StreamEvent):
    type: Literal["execution_complete"] = "execution_complete"
    result: ExecutionResult


class Error(StreamEvent):
    """A terminal error event; `error_type` is the API's error type."""

    type: Literal["error"] = "error"
    error_type: str = Field(default="internal_error")
    message: str = ""
    details: Any = None
    retry_after: float | None = None

    def to_exception(self) -> Exception:
        """The typed exception this event stands for."""
        from circuit_breaker.errors import error_from_dict

        return error_from_dict(
            {
                "type": self.error_type,
                "message": self.message,
                "execution_id": self.execution_id,
                "details": self.details,
                "retry_after": self.retry_after,
            },
            status=410 if self.error_type == "resume_unavailable" else None,
        )


EVENT_TYPES: dict[str, type[StreamEvent]] = {
    "execution_start": ExecutionStart,
    "content_chunk": ContentChunk,
    "tool_call": ToolCall,
    "tool_result": ToolResult,
    "usage_update": UsageUpdate,
    "attempt_restarted": AttemptRestarted,
    "execution_complete": ExecutionComplete,
    "error": Error,
}

TERMINAL = frozenset({"execution_complete", "error"})


def parse_event(event: str, data: str, event_id: str | None) -> StreamEvent | None:
    """The typed event of one SSE message; None for a type this SDK does not know."""
    cls = EVENT_TYPES.get(event)
    if cls is None:
        return None
    payload: dict[str, Any] = json.loads(data) if data else {}
    eid = int(event_id) if event_id not in (None, "") else None
    if cls is ExecutionComplete:
        return ExecutionComplete(
            event_id=eid, execution_id=payload.get("execution_id"), result=payload
        )
    if cls is Error:
        fields = {k: v for k, v in payload.items() if k != "type"}
        return Error(event_id=eid, error_type=payload.get("type") or "internal_error", **fields)
    fields = {k: v for k, v in payload.items() if k != "type"}  # a tool call's is "function"
    if cls is ToolCall:
        fields["call_type"] = payload.get("type")
    return cls.model_validate({**fields, "event_id": eid})
