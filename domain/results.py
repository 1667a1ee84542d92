"""An execution's result, typed: the facts it ended with, and how the API shows them.

The runner fills one `Outcome` as the execution goes; its terminal event records that
`Outcome` (facts: answer, usage, models, attempts, timings), not the HTTP document. The
document is `result_document(…)`, built from the facts when an answer or a read needs it,
so the API's layout can change without touching the event log. Events written before
(version 1, which stored the document) are read through `outcome_from_document`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.llm import Usage

Status = Literal["running", "completed", "failed", "cancelled"]


class Attempt(BaseModel):
    """One try of one model: the wait for a provider permit, the call, how it failed."""

    model: str
    provider: str | None = None  # not kept before terminal events' version 3
    endpoint: str | None = None  # which of its provider's endpoints, when it has several
    permit_ms: float = 0.0
    latency_ms: float = 0.0
    ttft_ms: float | None = None  # streamed: from sending the request to the first content
    error: str | None = None

    def as_api(self) -> dict[str, Any]:
        """The attempt as `attempt_log` shows it: `provider`, `endpoint` and `ttft_ms` when
        known."""
        unknown = {k for k in ("provider", "endpoint", "ttft_ms") if getattr(self, k) is None}
        return self.model_dump(exclude=unknown)


class Timings(BaseModel):
    """Where an execution's time went inside its tenant actor, in milliseconds."""

    start_write: float = 0.0
    permit: float = 0.0
    provider: float = 0.0
    finish_write: float | None = None  # known to the live answer only

    @classmethod
    def of(cls, start_write_ms: float, attempts: list[Attempt]) -> Timings:
        return cls(
            start_write=start_write_ms,
            permit=round(sum(a.permit_ms for a in attempts), 3),
            provider=round(sum(a.latency_ms for a in attempts), 3),
        )


class ErrorInfo(BaseModel):
    """A failure as clients see it: the stable `type`, a message, the execution."""

    type: str
    message: str
    execution_id: str | None = None


class Answer(BaseModel):
    """What the model answered (`response` in the API)."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str | None = None
    tool_results: list[dict[str, Any]] | None = None  # a completed execution's tool outputs


class Outcome(BaseModel):
    """The facts an execution ended with; what its terminal event records (version 2)."""

    answer: Answer | None = None
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float = 0.0
    model_resolved: str | None = None
    provider: str | None = None
    provider_model: str | None = None
    attempts: list[Attempt] | None = None  # None: the execution never reached a provider
    fallback_used: bool | None = None
    dropped_parameters: list[str] | None = None
    adjusted_parameters: dict[str, Any] | None = None
    capped_parameters: dict[str, Any] | None = None  # by the tenant's model policy
    routing: dict[str, Any] | None = None
    timings: Timings | None = None
    duration_ms: float | None = None
    ttft_ms: float | None = None  # streamed: from the execution's start to its first content
    tool_calls: int | None = None
    tool_errors: int | None = None
    tools_offered: list[str] | None = None
    request_metadata: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None  # the W3C trace the execution ran in
    cache_hit: bool | None = None  # None: the cache was not asked
    cost_saved_usd: float | None = None  # a hit: what the answer cost when it was made
    cached_from: str | None = None  # a hit: the execution whose answer it was
    cache_similarity: float | None = None  # a hit: 1.0 exact, else the semantic similarity
    guardrails: list[dict[str, Any]] | None = None  # the checks that fired (never the data)
    payload_erased: bool | None = None  # its payload's key was destroyed (`domain.shredding`)
    error: ErrorInfo | None = None

    def facts(self) -> dict[str, Any]:
        """The outcome as an event records it (JSON-able, unknowns left out)."""
        return self.model_dump(exclude_none=True)


# `metadata` of a result document, in the order it lists them; a state that does not know a
# key leaves it out
METADATA_KEYS = (
    "model_requested", "model_resolved", "provider", "attempts", "request_metadata",
    "tenant_capped_parameters", "routing", "provider_model", "attempt_log", "fallback_used",
    "dropped_parameters", "adjusted_parameters", "duration_ms", "ttft_ms", "timings_ms",
    "tool_calls", "tool_errors", "tools_offered", "trace_id", "cache_hit", "cost_saved_usd",
    "cached_from", "cache_similarity", "guardrails", "payload_erased",
)  # fmt: skip


def result_document(
    execution_id: str, agent_id: str, status: Status, model_requested: str, outcome: Outcome
) -> dict[str, Any]:
    """The JSON document clients get (`POST …/execute`, `execution_complete`, reads) for an
    execution in `status` that ended with `outcome`, rendered straight from its facts."""
    o, completed = outcome, status == "completed"
    known: dict[str, Any] = {
        "model_requested": model_requested,
        "model_resolved": o.model_resolved,
        "provider": o.provider,
        "attempts": len(o.attempts or []),
        "request_metadata": o.request_metadata,
    }
    optional = {
        "tenant_capped_parameters": o.capped_parameters,
        "routing": o.routing,
        "attempt_log": o.attempts,
        "duration_ms": o.duration_ms,
        "ttft_ms": o.ttft_ms,
        "trace_id": o.trace_id,
        "cache_hit": o.cache_hit,
        "cost_saved_usd": o.cost_saved_usd,
        "cached_from": o.cached_from,
        "cache_similarity": o.cache_similarity,
        "guardrails": o.guardrails,
        "payload_erased": o.payload_erased,
    }
    if completed:
        optional.update(
            fallback_used=o.fallback_used,
            dropped_parameters=o.dropped_parameters,
            adjusted_parameters=o.adjusted_parameters,
            timings_ms=o.timings,
            tool_calls=o.tool_calls,
            tool_errors=o.tool_errors,
            tools_offered=o.tools_offered,
        )
        known["provider_model"] = o.provider_model  # said always, None or not
    known.update({k: v for k, v in optional.items() if v is not None})
    usage = o.usage.model_dump()
    if not completed:  # what an unfinished execution counted: nothing yet
        usage = {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    usage["cost_usd"] = o.cost_usd
    return {
        "execution_id": execution_id,
        "agent_id": agent_id,
        "status": status,
        "response": _answer_api(o.answer, completed),
        "usage": usage,
        "metadata": {k: _plain(known[k]) for k in METADATA_KEYS if k in known},
        "error": o.error.model_dump() if o.error else None,
    }


def _answer_api(answer: Answer | None, completed: bool) -> dict[str, Any] | None:
    """A completed answer says how it finished and what its tools gave; a cut-off one
    only what was said."""
    if answer is None:
        return None
    shown: dict[str, Any] = {"content": answer.content, "tool_calls": answer.tool_calls}
    if completed:
        shown.update(finish_reason=answer.finish_reason, tool_results=answer.tool_results or [])
    return shown


def _plain(value: Any) -> Any:
    """A metadata value as JSON: models dumped, containers copied (the document is the
    caller's to change, never the outcome it came from)."""
    if isinstance(value, Timings):
        return value.model_dump(exclude_none=True)
    if isinstance(value, Attempt):
        return value.as_api()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value.model_dump() if isinstance(value, BaseModel) else value


def outcome_from_document(result: dict[str, Any]) -> dict[str, Any]:
    """The facts of a version-1 terminal event, which stored the API's result document."""
    meta = dict(result.get("metadata") or {})
    usage = dict(result.get("usage") or {})
    cost = usage.pop("cost_usd", 0.0)
    outcome = Outcome(
        answer=result.get("response"),
        usage=Usage.model_validate(usage),
        cost_usd=cost or 0.0,
        model_resolved=meta.get("model_resolved"),
        provider=meta.get("provider"),
        provider_model=meta.get("provider_model"),
        attempts=meta.get("attempt_log"),
        fallback_used=meta.get("fallback_used"),
        dropped_parameters=meta.get("dropped_parameters"),
        adjusted_parameters=meta.get("adjusted_parameters"),
        capped_parameters=meta.get("tenant_capped_parameters"),
        routing=meta.get("routing"),
        timings=meta.get("timings_ms"),
        duration_ms=meta.get("duration_ms"),
        tool_calls=meta.get("tool_calls"),
        tool_errors=meta.get("tool_errors"),
        tools_offered=meta.get("tools_offered"),
        request_metadata=meta.get("request_metadata") or {},
        error=result.get("error"),
    )
    return outcome.facts()
