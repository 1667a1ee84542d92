"""State agent configurations: an agent bound to a workflow state, run for a resource.

Pure logic only: checking a configuration, reading template variables out of the resource
data (`inputMapping`), the user turn they make, the resource fields an answer fills
(`outputMapping`), which failures a configuration retries and after how long, and the
legacy status of an execution.

A mapping path is a small JSONPath: `$` (the whole document), then `.name` or `[index]`
steps, e.g. `$.customer.name` or `$.items[0].sku`; the leading `$.` may be left out
(`customer.name`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from domain.errors import ERROR_TYPES, InvalidRequest
from domain.prompting import render_user_turn
from domain.schemas import Parameters

MAX_ATTEMPTS = 10  # a retry configuration's ceiling on attempts per trigger
MAX_BACKOFF_S = 300  # and on one wait between attempts
MAX_SCHEDULE_S = 7 * 24 * 3600
MAX_SCHEDULED_RUNS = 1000
ANY_ERROR = frozenset({"*", "any", "all"})

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}")


class MissingPath(LookupError):
    """A path that leads nowhere in the document."""


def parse_path(path: str) -> list[str | int]:
    """The steps of a mapping path (names and list indexes); InvalidRequest if malformed."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidRequest(f"mapping path {path!r} is not a non-empty string")
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    elif not text.startswith("["):
        text = "." + text
    steps: list[str | int] = []
    position = 0
    for match in _STEP.finditer(text):
        if match.start() != position:
            break
        name, index = match.groups()
        steps.append(name if name is not None else int(index))
        position = match.end()
    if position != len(text):
        raise InvalidRequest(
            f"mapping path {path!r} is malformed at {text[position:]!r}: write $.a.b or $.items[0]"
        )
    return steps


def read_path(document: Any, path: str) -> Any:
    """The value at `path` in `document`; MissingPath if there is none."""
    value = document
    for step in parse_path(path):
        if isinstance(step, int) and isinstance(value, list) and step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            raise MissingPath(path)
    return value


def check_input_mapping(mapping: Any) -> dict[str, str]:
    """`inputMapping`: an object of template variable → path into the resource data."""
    if not isinstance(mapping, dict):
        raise InvalidRequest("inputMapping must be a JSON object of variable name → path")
    for name, path in mapping.items():
        if not _VARIABLE.match(name):
            raise InvalidRequest(f"inputMapping: {name!r} is not a template variable name")
        parse_path(path)
    return dict(mapping)


def check_output_mapping(mapping: Any) -> dict[str, str]:
    """`outputMapping`: an object of resource field (dotted) → path into the answer."""
    if not isinstance(mapping, dict):
        raise InvalidRequest("outputMapping must be a JSON object of resource field → path")
    for field, path in mapping.items():
        if not field or any(not part for part in field.split(".")):
            raise InvalidRequest(f"outputMapping: {field!r} is not a dotted field name")
        parse_path(path)
    return dict(mapping)


def check_retry(retry: dict[str, Any] | None) -> dict[str, Any] | None:
    if retry is None:
        return None
    if not 1 <= retry["max_attempts"] <= MAX_ATTEMPTS:
        raise InvalidRequest(f"retryConfig.maxAttempts must be from 1 to {MAX_ATTEMPTS}")
    if not 0 <= retry["backoff_seconds"] <= MAX_BACKOFF_S:
        raise InvalidRequest(f"retryConfig.backoffSeconds must be from 0 to {MAX_BACKOFF_S}")
    return retry


def check_schedule(schedule: dict[str, Any] | None) -> dict[str, Any] | None:
    if schedule is None:
        return None
    for name, floor, ceiling in (
        ("initial_delay_seconds", 0, MAX_SCHEDULE_S),
        ("interval_seconds", 1, MAX_SCHEDULE_S),
        ("max_executions", 1, MAX_SCHEDULED_RUNS),
    ):
        value = schedule.get(name)
        if value is not None and not floor <= value <= ceiling:
            raise InvalidRequest(f"schedule.{_camel(name)} must be from {floor} to {ceiling}")
    return schedule


def checked_config(config: dict[str, Any]) -> dict[str, Any]:
    """A configuration as stored (snake_case keys of `StateAgentConfigInput`), checked:
    mappings, LLM overrides, retry and schedule; InvalidRequest says what is wrong."""
    for name in ("state_id", "agent_id"):
        if not str(config.get(name) or "").strip():
            raise InvalidRequest(f"{_camel(name)} must not be empty")
    checked = {
        **config,
        "input_mapping": check_input_mapping(config.get("input_mapping")),
        "output_mapping": check_output_mapping(config.get("output_mapping")),
        "retry_config": check_retry(config.get("retry_config")),
        "schedule": check_schedule(config.get("schedule")),
    }
    parameters_of(config.get("llm_config"))
    return checked


def parameters_of(llm_config: dict[str, Any] | None) -> dict[str, Any]:
    """The execution parameters a configuration's `llmConfig` overrides (those it sets)."""
    if not llm_config:
        return {}
    unified = {
        "temperature": llm_config.get("temperature"),
        "max_tokens": llm_config.get("max_tokens"),
        "top_p": llm_config.get("top_p"),
        "frequency_penalty": llm_config.get("frequency_penalty"),
        "presence_penalty": llm_config.get("presence_penalty"),
        "stop": list(llm_config.get("stop_sequences") or []) or None,
    }
    try:
        return Parameters.model_validate(unified).set_values()
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise InvalidRequest(f"llmConfig.{where}: {first['msg']}") from None


def input_variables(mapping: dict[str, str], data: Any) -> dict[str, Any]:
    """The template variables `mapping` reads from the resource data; an empty mapping
    passes the whole data as `data`. InvalidRequest names a path the data lacks."""
    if not mapping:
        return {"data": data}
    variables = {}
    for name, path in mapping.items():
        try:
            variables[name] = read_path(data, path)
        except MissingPath:
            raise InvalidRequest(
                f"inputMapping.{name}: the resource data has nothing at {path!r}",
                details={"variable": name, "path": path},
            ) from None
    return variables


def user_turn(template: str, variables: dict[str, Any]) -> str:
    """The user message: the agent's template with `{name}`/`{{name}}` filled from the
    variables; the prompt (variable `prompt`, else the variables the template did not place,
    as JSON) goes where the template says `{prompt}`, else after it."""
    used: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name == "prompt" or name not in variables:
            return match.group(0)
        used.add(name)
        return _text(variables[name])

    rendered = _PLACEHOLDER.sub(fill, template or "")
    if "prompt" in variables:
        prompt = _text(variables["prompt"])
    else:
        rest = {k: v for k, v in variables.items() if k not in used}
        prompt = json.dumps(rest, sort_keys=True, ensure_ascii=False) if rest else ""
    text = render_user_turn(rendered, prompt).strip()
    if not text:
        raise InvalidRequest("the user turn is empty: map a variable or give the agent a template")
    return text


def output_document(content: str | None) -> dict[str, Any]:
    """What `outputMapping` paths read: the answer's text, and its JSON when it is JSON."""
    parsed = None
    if content:
        try:
            parsed = json.loads(content)
        except ValueError:
            parsed = None
    return {"content": content, "json": parsed}


def output_fields(mapping: dict[str, str], content: str | None) -> dict[str, Any]:
    """The resource fields `mapping` fills from an answer, nested by their dotted names; a
    path the answer lacks leaves its field out."""
    document = output_document(content)
    fields: dict[str, Any] = {}
    for field, path in mapping.items():
        try:
            value = read_path(document, path)
        except MissingPath:
            continue
        *parents, last = field.split(".")
        target = fields
        for part in parents:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
        target[last] = value
    return fields


def retries_on(error_type: str, listed: list[str]) -> bool:
    """Whether a failure of `error_type` is one of `listed`: a listed name matches the
    type or one it refines (`provider_error` covers `provider_timeout`), spelled in any
    case or style (`ProviderTimeout`, `TimeoutError` and `timeout` all cover
    `provider_timeout`); `*`, `any` or `all` match every failure."""
    kinds = [_norm(t) for t in _lineage(error_type)]
    for name in listed:
        if name.strip().lower() in ANY_ERROR:
            return True
        wanted = _norm(name)
        if wanted and any(wanted in kind for kind in kinds):
            return True
    return False


def backoff_s(backoff_seconds: int, retry: int) -> float:
    """The wait before retry number `retry` (from 1): the backoff, doubled each time."""
    return float(min(MAX_BACKOFF_S, backoff_seconds * 2 ** (retry - 1)))


TIMEOUTS = frozenset({"provider_timeout", "timeout"})
LEGACY_STATUS = {
    "running": "RUNNING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "cancelled": "CANCELLED",
}


def legacy_status(status: str, error_type: str | None) -> str:
    """The legacy status of a history status: a failure by timeout is TIMEOUT."""
    if status == "failed" and error_type in TIMEOUTS:
        return "TIMEOUT"
    return LEGACY_STATUS.get(status, "PENDING")


def _lineage(error_type: str) -> list[str]:
    """The error type and the types it refines, as the taxonomy has them."""
    cls = ERROR_TYPES.get(error_type)
    if cls is None:
        return [error_type]
    return [c.type for c in cls.__mro__ if "type" in c.__dict__ and c.type != "internal_error"]


def _norm(name: str) -> str:
    text = re.sub(r"[^a-z0-9]", "", name.lower())
    for suffix in ("exception", "error"):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    return text


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
