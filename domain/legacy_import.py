"""How records of the legacy GraphQL system become this platform's (docs/migration.md, "Field
by field"): agents, state agent configurations and executions as the legacy API returns them
(camelCase), mapped to definitions, configurations and imported-execution records; and the
comparison `cb migrate verify` makes between a source record and what was imported."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

KINDS = ("agent", "state_agent_config", "execution")  # in the order they are imported
IMPORTED = "imported"  # the history `kind` of an imported execution
NO_COST = (
    "imported from the legacy system: no LLM call was made by this platform for it, so no"
    " tokens or cost are recorded"
)
_NAMESPACE = uuid.UUID("5d3c1a8e-6f1b-4f43-9d0e-2b7c4c0a9e11")

# legacy status → (history status, error type)
STATUSES: dict[str, tuple[str, str | None]] = {
    "COMPLETED": ("completed", None),
    "FAILED": ("failed", "legacy_error"),
    "TIMEOUT": ("failed", "timeout"),
    "CANCELLED": ("cancelled", None),
    "PENDING": ("cancelled", "imported_unfinished"),
    "RUNNING": ("cancelled", "imported_unfinished"),
}


class SourceError(ValueError):
    """A legacy record that cannot be read (the message says which and why)."""


def imported_id(tenant_id: str, kind: str, legacy_id: str) -> str:
    """The id a legacy record gets here: the same legacy id always gives the same id, so a
    rerun finds what an earlier run imported and a legacy id resolves to its record."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}/{kind}/{legacy_id}"))


def moment(text: Any) -> float | None:
    """A legacy timestamp (RFC 3339 / ISO 8601, or unix seconds) as unix seconds."""
    if text is None or text == "":
        return None
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        raise SourceError(f"not a timestamp: {text!r}")
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SourceError(f"not a timestamp: {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass
class Mapped:
    """A legacy record mapped: what to create here, or why it cannot be (`problem`)."""

    kind: str
    legacy_id: str
    record: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None


def _text(record: Mapping[str, Any], *path: str) -> Any:
    value: Any = record
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _legacy_id(record: Any, kind: str) -> str:
    if not isinstance(record, Mapping):
        raise SourceError(f"a {kind} record is not an object: {record!r:.80}")
    legacy = record.get("id")
    if not isinstance(legacy, str) or not legacy.strip():
        raise SourceError(f"a {kind} record has no id: {dict(record)!r:.120}")
    return legacy


def chosen_model(model: str, model_map: Mapping[str, str], known: Collection[str]) -> str | None:
    """The model an agent of the legacy `model` gets: the operator's mapping, else the same
    name when this platform knows it; None when neither."""
    if model in model_map:
        return model_map[model]
    return model if model in known else None


def agent_definition(
    record: Mapping[str, Any], model_map: Mapping[str, str], known: Collection[str]
) -> Mapped:
    """A legacy `AgentDefinitionGQL` as this platform's agent definition."""
    legacy = _legacy_id(record, "agent")
    stated = _text(record, "llmProvider", "model")
    if not isinstance(stated, str) or not record.get("name"):
        return Mapped("agent", legacy, problem="the record has no name or no llmProvider.model")
    model = chosen_model(stated, model_map, known)
    if model is None:
        return Mapped(
            "agent", legacy,
            problem=f"unknown model {stated!r}: give --model-map {stated}=<a catalog model or"
            " virtual name>",
        )  # fmt: skip
    config = record.get("llmConfig") or {}
    parameters = {
        "temperature": config.get("temperature"),
        "max_tokens": config.get("maxTokens"),
        "top_p": config.get("topP"),
        "frequency_penalty": config.get("frequencyPenalty"),
        "presence_penalty": config.get("presencePenalty"),
        "stop": list(config.get("stopSequences") or []) or None,
    }
    definition = {
        "name": record["name"],
        "description": record.get("description") or "",
        "model": model,
        "provider_type": _text(record, "llmProvider", "providerType"),
        "base_url": _text(record, "llmProvider", "baseUrl"),
        "system_prompt": _text(record, "prompts", "system") or "",
        "user_template": _text(record, "prompts", "userTemplate") or "",
        "context_instructions": _text(record, "prompts", "contextInstructions"),
        "parameters": {k: v for k, v in parameters.items() if v is not None},
        "tools": list(record.get("tools") or []),
        "capabilities": list(record.get("capabilities") or []),
        "tags": ["imported"],
        "legacy_id": legacy,
    }
    return Mapped("agent", legacy, definition)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snaked(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_snake(k): _snaked(v) for k, v in value.items()}
    return value


def state_config(record: Mapping[str, Any], agent_ids: Mapping[str, str]) -> Mapped:
    """A legacy `StateAgentConfigGQL` as a state agent configuration of the imported agent
    (`agent_ids`: legacy agent id → id here, for the agents this import knows)."""
    legacy = _legacy_id(record, "state agent configuration")
    agent = agent_ids.get(str(record.get("agentId")))
    if agent is None:
        return Mapped(
            "state_agent_config", legacy,
            problem=f"its agent {record.get('agentId')!r} is not imported (import it first)",
        )  # fmt: skip
    config = {
        "state_id": record.get("stateId"),
        "agent_id": agent,
        "llm_config": _snaked(record.get("llmConfig")) if record.get("llmConfig") else None,
        "input_mapping": record.get("inputMapping") or {},
        "output_mapping": record.get("outputMapping") or {},
        "auto_activity": record.get("autoActivity"),
        "schedule": _snaked(record.get("schedule")) if record.get("schedule") else None,
        "retry_config": _snaked(record.get("retryConfig")) if record.get("retryConfig") else None,
        "enabled": bool(record.get("enabled")),
        "legacy_id": legacy,
    }
    return Mapped("state_agent_config", legacy, config)


def execution_record(record: Mapping[str, Any], agent_ids: Mapping[str, str]) -> Mapped:
    """A legacy `AgentExecutionGQL` as an imported execution: its original times, status,
    input and output; its agent here when that agent was imported (else the legacy id)."""
    legacy = _legacy_id(record, "execution")
    status = record.get("status")
    if status not in STATUSES:
        return Mapped("execution", legacy, problem=f"unknown status {status!r}")
    try:
        started, completed = moment(record.get("startedAt")), moment(record.get("completedAt"))
    except SourceError as exc:
        return Mapped("execution", legacy, problem=str(exc))
    if started is None:
        return Mapped("execution", legacy, problem="the record has no startedAt")
    legacy_agent = str(record.get("agentId") or "")
    row = {
        "agent_id": agent_ids.get(legacy_agent, legacy_agent),
        "legacy_agent_id": legacy_agent,
        "legacy_status": status,
        "resource_id": record.get("resourceId"),
        "state_id": record.get("stateId"),
        "input": record.get("inputData"),
        "output": record.get("outputData"),
        "error_message": record.get("errorMessage"),
        "started_at": started,
        "completed_at": completed,
        "duration_ms": record.get("durationMs"),
        "retry_count": record.get("retryCount") or 0,
        "legacy_id": legacy,
    }
    return Mapped("execution", legacy, row)


# What `verify` compares: for each kind, a record here (as the API shows it) reduced to the
# fields the source maps to, by `Mapped.record` key.
_AGENT_FIELDS = (
    "name", "description", "model", "provider_type", "base_url", "system_prompt",
    "user_template", "context_instructions", "parameters", "tools", "capabilities", "legacy_id",
)  # fmt: skip
_CONFIG_FIELDS = (
    "state_id", "agent_id", "llm_config", "input_mapping", "output_mapping", "auto_activity",
    "schedule", "retry_config", "enabled", "legacy_id",
)  # fmt: skip
_EXECUTION_FIELDS = (
    "agent_id", "legacy_status", "resource_id", "state_id", "input", "output", "error_message",
    "started_at", "completed_at", "duration_ms", "retry_count", "legacy_id",
)  # fmt: skip
FIELDS = {"agent": _AGENT_FIELDS, "state_agent_config": _CONFIG_FIELDS,
          "execution": _EXECUTION_FIELDS}  # fmt: skip


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) < 1e-3
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        keys = {k for k in (*a, *b) if a.get(k) is not None or b.get(k) is not None}
        return all(_same(a.get(k), b.get(k)) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def differences(kind: str, expected: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The fields where what is here (`current`) differs from what the source maps to
    (`expected`, a `Mapped.record`), each as `field: expected … here …`."""
    return [
        f"{name}: source {expected.get(name)!r:.80}, here {current.get(name)!r:.80}"
        for name in FIELDS[kind]
        if not _same(expected.get(name), current.get(name))
    ]


def mapped(
    kind: str,
    record: Mapping[str, Any],
    model_map: Mapping[str, str],
    known: Collection[str],
    agent_ids: Mapping[str, str],
) -> Mapped:
    """One legacy record of `kind` mapped (a record that cannot be read is a problem)."""
    mappers: dict[str, Callable[[], Mapped]] = {
        "agent": lambda: agent_definition(record, model_map, known),
        "state_agent_config": lambda: state_config(record, agent_ids),
        "execution": lambda: execution_record(record, agent_ids),
    }
    try:
        return mappers[kind]()
    except SourceError as exc:
        legacy = record.get("id") if isinstance(record, Mapping) else None
        return Mapped(kind, str(legacy or "?"), problem=str(exc))


class ImportRequest(BaseModel):
    """`POST /api/v1/admin/tenants/{id}/migrations`: legacy records as the legacy API returns
    them, where they came from, and the operator's model mapping."""

    model_config = ConfigDict(extra="forbid")

    source: dict[str, Any] = Field(
        default_factory=dict, description="where the records came from: {kind, url | file}"
    )
    model_map: dict[str, str] = Field(default_factory=dict, description="legacy model → model here")
    dry_run: bool = False
    migration_id: str | None = Field(default=None, description="continue this run (a part)")
    final: bool = Field(default=True, description="the run's last part: it is finished")
    agents: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)
    state_agent_configs: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)
    executions: list[dict[str, Any]] = Field(default_factory=list, max_length=100_000)
