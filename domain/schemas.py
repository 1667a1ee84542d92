"""Pydantic schemas of the public HTTP API."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from domain.errors import InvalidRequest
from domain.guardrails import Guardrails
from domain.judging import JudgeSpec
from domain.reference_agents import REFERENCE_AGENTS
from domain.response_cache import CacheSettings

Scope = Literal[
    "agents:read",
    "agents:write",
    "agents:execute",
    "executions:read",
    "executions:write",
    "analytics:read",
    "tenant:admin",
]
SCOPES: tuple[Scope, ...] = get_args(Scope)
"""Every scope an API key or token may carry, in the order of `Scope`."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Parameters(_Body):
    """Unified generation parameters; each model takes the subset its config entry lists."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stop: list[str] | None = Field(default=None, max_length=4)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None

    def set_values(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class TenantCreate(_Body):
    name: str = Field(min_length=1, max_length=200)


class ApiKeyCreate(_Body):
    scopes: list[Scope] = Field(default_factory=lambda: list(SCOPES))
    expires_at: float | None = Field(default=None, description="Unix time after which it fails")


class AgentCreate(_Body):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    model: str = Field(min_length=1, max_length=200)
    system_prompt: str = Field(default="", max_length=100_000)
    user_template: str = Field(default="{prompt}", max_length=100_000)
    parameters: Parameters = Parameters()
    tools: list[str] = Field(default_factory=list, max_length=128)
    capabilities: list[str] = Field(default_factory=list, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=64)
    provider_type: str | None = Field(default=None, max_length=100)
    context_instructions: str | None = Field(default=None, max_length=100_000)
    cache: CacheSettings | None = None
    guardrails: Guardrails | None = None
    judge: JudgeSpec | None = None


OWN_SETTINGS = ("cache", "guardrails", "judge")  # an agent's own, stored only when set


def agent_definition(body: AgentCreate) -> dict[str, Any]:
    """The stored definition of a new agent: parameters only as set; `cache`,
    `guardrails` and `judge` only when given."""
    definition = body.model_dump(exclude=set(OWN_SETTINGS))
    definition["parameters"] = body.parameters.set_values()
    for name in OWN_SETTINGS:
        value = getattr(body, name)
        if value is not None:
            definition[name] = value.model_dump(by_alias=True, exclude_none=True)
    return definition


def reference_definitions() -> list[dict[str, Any]]:
    """The stored definitions of the four reference agents of PED 13.1."""
    return [agent_definition(AgentCreate(**agent)) for agent in REFERENCE_AGENTS]


class AgentUpdate(_Body):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    system_prompt: str | None = Field(default=None, max_length=100_000)
    user_template: str | None = Field(default=None, max_length=100_000)
    parameters: Parameters | None = None
    tools: list[str] | None = None
    capabilities: list[str] | None = None
    tags: list[str] | None = None
    context_instructions: str | None = None
    cache: CacheSettings | None = None
    guardrails: Guardrails | None = None
    judge: JudgeSpec | None = None

    def changes(self) -> dict[str, Any]:
        """The fields sent, as stored (parameters as set; `cache: null`, `guardrails: null`
        or `judge: null` removes the agent's own)."""
        changes = self.model_dump(exclude_unset=True)
        for name in OWN_SETTINGS:
            value = getattr(self, name)
            if value is not None:
                changes[name] = value.model_dump(by_alias=True, exclude_none=True)
        if self.parameters is not None:
            changes["parameters"] = self.parameters.set_values()
        return changes


class ContextMessage(_Body):
    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=1_000_000)


class StreamOptions(_Body):
    """How a streamed execution behaves: heartbeat interval, and what a disconnect does."""

    heartbeat_s: float = Field(default=15.0, ge=0.5, le=300)
    on_disconnect: Literal["cancel", "continue"] = "cancel"
    include_usage: bool = True


MAX_CONTEXT_MESSAGES = 1000
MAX_JSON_DEPTH = 32


def json_depth(value: Any) -> int:
    """How deeply `value` nests lists and objects (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    return 0


class ExecuteRequest(_Body):
    prompt: str = Field(min_length=1, max_length=1_000_000)
    context: (
        list[ContextMessage] | dict[str, Any] | Annotated[str, Field(max_length=1_000_000)] | None
    ) = Field(default=None)
    parameters: Parameters = Field(  # a factory: a model default is deep-copied per request
        default_factory=Parameters, json_schema_extra={"default": Parameters().model_dump()}
    )
    metadata: dict[str, Any] = Field(default_factory=dict, max_length=64)
    tools: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=128)
    stream_options: StreamOptions | None = None
    cache: CacheSettings | None = None
    # the end user the execution is about: its payload can be exported and erased by it
    subject: str | None = Field(default=None, min_length=1, max_length=256)

    @field_validator("context", "metadata")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        if isinstance(value, list) and len(value) > MAX_CONTEXT_MESSAGES:
            raise ValueError(f"at most {MAX_CONTEXT_MESSAGES} messages")
        if isinstance(value, dict) and json_depth(value) > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        return value

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


def execution_request(body: ExecuteRequest, caller: str | None = None) -> dict[str, Any]:
    """An execute request as the tenant actor takes it (its Started event records it, all
    but `caller`: the credential that asked, kept apart)."""
    request = body.model_dump(exclude_none=True)
    request["parameters"] = body.parameters.set_values()
    if caller is not None:
        request["caller"] = caller
    return request


MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,99}$")


def check_model_name(name: str) -> None:
    """A virtual name: letters, digits and `:._-`, at most 100 characters."""
    if not MODEL_NAME.match(name):
        raise InvalidRequest(
            f"name: {name!r} is not a model name (letters, digits and ':._-', at most 100)"
        )


class ProviderCredential(_Body):
    """A tenant's own provider key (write-only)."""

    api_key: SecretStr = Field(min_length=1, max_length=4096)


class ModelPolicy(_Body):
    """A tenant's limits on models: an allow-list, parameter defaults, parameter caps."""

    allowed_models: list[str] | None = Field(default=None, max_length=500)
    parameter_defaults: Parameters = Parameters()
    parameter_caps: dict[Literal["max_tokens", "temperature", "top_p"], float] = Field(
        default_factory=dict
    )
    cache: CacheSettings | None = Field(
        default=None, description="the tenant's default: unsampled requests only"
    )
    guardrails: Guardrails | None = Field(
        default=None, description="checks before the agent's own, on every execution"
    )


class McpServerCreate(_Body):
    """An MCP server for the tenant: a command over stdio, or a streamable HTTP URL."""

    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,40}$")
    transport: Literal["stdio", "http"]
    command: str | None = Field(default=None, max_length=500)
    args: list[str] = Field(default_factory=list, max_length=64)
    env: dict[str, SecretStr] = Field(default_factory=dict, max_length=64)
    url: str | None = Field(default=None, pattern=r"^https?://", max_length=2000)
    headers: dict[str, SecretStr] = Field(default_factory=dict, max_length=64)
    bearer_token: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _transport_fields(self) -> McpServerCreate:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio server needs `command`")
        if self.transport == "http" and not self.url:
            raise ValueError("an http server needs `url`")
        return self

    def server(self) -> dict[str, Any]:
        """What is stored in clear: no environment value, header or token."""
        return self.model_dump(include={"name", "transport", "command", "args", "url", "timeout_s"})

    def secrets(self) -> dict[str, dict[str, str]]:
        """Environment values and headers (incl. the bearer token) in clear, to be sealed."""
        headers = {k: v.get_secret_value() for k, v in self.headers.items()}
        if self.bearer_token is not None:
            headers["Authorization"] = "Bearer " + self.bearer_token.get_secret_value()
        return {"env": {k: v.get_secret_value() for k, v in self.env.items()}, "headers": headers}
