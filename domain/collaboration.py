"""Collaborations: a small DAG of steps, each a real execution of an agent or of a model with
a prompt, whose input is a template over the run's inputs and earlier steps' outputs.

`CollaborationDefinition` checks a definition whole (unique step ids, known dependencies, no
cycle, every template reference to a declared input or to a step it depends on, the output
step) so that a bad one is a 400 before anything runs. `render` fills a step's template;
`Collaboration` is the saved, versioned definition.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal
from uuid import UUID

import jsonschema
from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.errors import InvalidRequest, NotFound
from domain.schemas import Parameters

STEP_ID = r"^[A-Za-z0-9_-]{1,64}$"
MAX_STEPS = 50
# {{inputs.NAME}}, {{inputs.NAME.path}}, {{steps.ID.output}}, {{steps.ID.output.json.path}}
REFERENCE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_NAME = r"[A-Za-z0-9_-]+"
_INPUT = re.compile(rf"^inputs\.({_NAME})((?:\.{_NAME})*)$")
_STEP = re.compile(rf"^steps\.({_NAME})\.output((?:\.{_NAME})*)$")
_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


class Step(BaseModel):
    """One step: an agent (`agent_id`) or a model with a system prompt, run on its input."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID)
    agent_id: str | None = Field(default=None, min_length=1, max_length=100)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    parameters: Parameters = Parameters()
    input: str = Field(min_length=1, max_length=100_000)
    depends_on: list[str] = Field(default_factory=list, max_length=MAX_STEPS)
    on_failure: Literal["fail", "skip_dependents", "continue"] = "fail"
    timeout_s: float = Field(default=300.0, gt=0, le=3600)
    retries: int = Field(default=1, ge=0, le=5, description="attempts after the first")

    @model_validator(mode="after")
    def _one_target(self) -> Step:
        if (self.agent_id is None) == (self.model is None):
            raise ValueError(f"step {self.id!r}: give either agent_id or model")
        if self.agent_id is not None and self.system_prompt is not None:
            raise ValueError(f"step {self.id!r}: system_prompt goes with model, not agent_id")
        return self


class CollaborationDefinition(BaseModel):
    """A definition as `POST /api/v1/collaborations` takes it (or inline in a run)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    inputs: dict[str, dict[str, Any] | None] = Field(default_factory=dict, max_length=50)
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    output: str | None = Field(default=None, description="the step whose output is the run's")

    @model_validator(mode="after")
    def _checked(self) -> CollaborationDefinition:
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must differ")
        for name, schema in self.inputs.items():
            if not re.fullmatch(_NAME, name):
                raise ValueError(f"input name {name!r}: letters, digits, '_' and '-' only")
            if schema is not None:
                try:
                    jsonschema.validators.validator_for(schema).check_schema(schema)
                except jsonschema.SchemaError as err:
                    raise ValueError(f"input {name!r}: not a JSON schema: {err.message}") from err
        for step in self.steps:
            for dependency in step.depends_on:
                if dependency not in ids:
                    raise ValueError(f"step {step.id!r} depends on unknown step {dependency!r}")
        order = topological_order(self.steps)  # raises on a cycle
        ancestors = ancestry(self.steps)
        for step in self.steps:
            for kind, name, _ in references(step.input, step.id):
                if kind == "inputs" and name not in self.inputs:
                    raise ValueError(f"step {step.id!r} references undeclared input {name!r}")
                if kind == "steps" and name not in ancestors[step.id]:
                    raise ValueError(
                        f"step {step.id!r} references step {name!r}, which it does not depend "
                        "on (add it to depends_on)"
                        if name in ids
                        else f"step {step.id!r} references unknown step {name!r}"
                    )
        if self.output is None:
            sinks = [i for i in ids if not any(i in s.depends_on for s in self.steps)]
            if len(sinks) != 1:
                raise ValueError(f"name the output step: the last steps are {sinks}")
            self.output = sinks[0]
        elif self.output not in ids:
            raise ValueError(f"output names unknown step {self.output!r}")
        self.steps = [next(s for s in self.steps if s.id == i) for i in order]
        return self

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def dependents(self, step_id: str) -> set[str]:
        """Every step that depends on `step_id`, directly or not."""
        return {s.id for s in self.steps if step_id in ancestry(self.steps)[s.id]}

    def check_inputs(self, given: dict[str, Any]) -> None:
        """A run's inputs: every declared one given, none other, each valid by its schema."""
        unknown = sorted(set(given) - set(self.inputs))
        if unknown:
            raise InvalidRequest(
                f"unknown inputs {unknown}; declared: {sorted(self.inputs)}",
                details={"param": f"inputs.{unknown[0]}"},
            )
        for name, schema in self.inputs.items():
            if name not in given:
                raise InvalidRequest(
                    f"input {name!r} is missing", details={"param": f"inputs.{name}"}
                )
            if schema is not None:
                try:
                    jsonschema.validate(given[name], schema)
                except jsonschema.ValidationError as err:
                    raise InvalidRequest(
                        f"input {name!r}: {err.message}", details={"param": f"inputs.{name}"}
                    ) from err


def topological_order(steps: list[Step]) -> list[str]:
    """Step ids with every dependency first (the given order where free); ValueError on a
    cycle, naming the steps in it."""
    pending = {s.id: set(s.depends_on) for s in steps}
    order: list[str] = []
    while pending:
        ready = [i for i, deps in pending.items() if not deps - set(order)]
        if not ready:
            raise ValueError(f"the steps {sorted(pending)} depend on each other in a cycle")
        order.append(ready[0])
        del pending[ready[0]]
    return order


def ancestry(steps: list[Step]) -> dict[str, set[str]]:
    """Each step's dependencies, direct and indirect."""
    direct = {s.id: set(s.depends_on) for s in steps}
    found: dict[str, set[str]] = {}

    def of(step_id: str, seen: frozenset[str]) -> set[str]:
        if step_id not in found:
            result: set[str] = set()
            for dep in direct.get(step_id, ()):
                if dep not in seen:
                    result |= {dep} | of(dep, seen | {dep})
            found[step_id] = result
        return found[step_id]

    return {i: of(i, frozenset({i})) for i in direct}


def references(template: str, step_id: str) -> list[tuple[str, str, list[str]]]:
    """(`inputs` or `steps`, name, JSON path) of each `{{…}}` in a template; ValueError on
    anything else between the braces."""
    found = []
    for match in REFERENCE.finditer(template):
        text = match.group(1)
        for kind, pattern in (("inputs", _INPUT), ("steps", _STEP)):
            parsed = pattern.match(text)
            if parsed:
                path = [p for p in parsed.group(2).split(".") if p]
                found.append((kind, parsed.group(1), path))
                break
        else:
            raise ValueError(
                f"step {step_id!r}: unknown reference {{{{{text}}}}} (use inputs.NAME or "
                "steps.ID.output, each with an optional .json.path)"
            )
    return found


class TemplateError(Exception):
    """A reference that cannot be filled at run time (a path into an output that is not
    JSON, or not there)."""


def render(template: str, inputs: dict[str, Any], outputs: dict[str, Any]) -> str:
    """The template with each reference replaced: text as it is, anything else as JSON.
    `outputs` holds each finished step's output (a failed one's: `{"error": …}`)."""

    def fill(match: re.Match[str]) -> str:
        [(kind, name, path)] = references(match.group(0), "")
        if kind == "inputs":
            value = _walk(inputs[name], path, f"inputs.{name}")
        else:
            value = outputs[name]
            if path:
                value = _walk(as_json(value, name), path, f"steps.{name}.output")
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    return REFERENCE.sub(fill, template)


def as_json(output: Any, step_id: str) -> Any:
    """A step's output read as JSON (a fenced ```json block too)."""
    if not isinstance(output, str):
        return output
    fenced = _FENCE.match(output)
    try:
        return json.loads(fenced.group(1) if fenced else output)
    except ValueError as err:
        raise TemplateError(f"step {step_id!r}'s output is not JSON: {err}") from err


def _walk(value: Any, path: list[str], where: str) -> Any:
    for part in path:
        where = f"{where}.{part}"
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise TemplateError(f"{where} is not there")
    return value


def checked(body: dict[str, Any]) -> CollaborationDefinition:
    """A definition from JSON, or InvalidRequest naming what is wrong."""
    try:
        return CollaborationDefinition.model_validate(body)
    except ValueError as err:  # pydantic's ValidationError is one
        raise InvalidRequest(f"invalid collaboration: {_first_error(err)}") from err


def _first_error(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if errors is None:
        return str(err)
    first = errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


class Collaboration(Aggregate):
    """A saved definition; each update is a new version, deletion is a fact too."""

    @event("Created")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        definition: dict[str, Any],
        by: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.definition = definition
        self.deleted = False

    def check_exists(self) -> None:
        if self.deleted:
            raise NotFound(f"collaboration {self.id} not found")

    def update(self, definition: dict[str, Any], by: str | None) -> None:
        self.check_exists()
        self._updated(self.tenant_id, definition, by)

    @event("Updated")
    def _updated(self, tenant_id: str, definition: dict[str, Any], by: str | None) -> None:
        self.definition = definition

    def delete(self, by: str | None) -> None:
        self.check_exists()
        self._deleted(self.tenant_id, by)

    @event("Deleted")
    def _deleted(self, tenant_id: str, by: str | None) -> None:
        self.deleted = True

    def as_api(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            **self.definition,
            "version": self.version,
            "created_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
