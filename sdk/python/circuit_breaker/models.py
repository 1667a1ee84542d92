"""Pydantic models of the API's answers. Fields keep the REST API's snake_case names; fields
the SDK does not know yet are kept (`extra="allow"`), so a newer server loses nothing."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class APIModel(BaseModel):
    """Base of every answer model: unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Usage(APIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None
    cached_tokens: int | None = None
    estimated: bool | None = None


class Agent(APIModel):
    id: str
    name: str
    tenant_id: str | None = None
    description: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    user_template: str | None = None
    context_instructions: str | None = None
    parameters: dict[str, Any] = {}
    tools: list[str] = []
    capabilities: list[str] = []
    tags: list[str] = []
    version: int | None = None
    created_at: str | None = None
    updated_at: str | None = None


class AgentResponse(APIModel):
    content: str | None = None
    tool_calls: list[dict[str, Any]] = []
    finish_reason: str | None = None
    tool_results: list[dict[str, Any]] | None = None


class ExecutionResult(APIModel):
    """The answer of an execution (`execute`, or a stream's `execution_complete`)."""

    execution_id: str
    agent_id: str | None = None
    status: str = "completed"
    response: AgentResponse | None = None
    usage: Usage = Usage()
    metadata: dict[str, Any] = {}
    error: dict[str, Any] | None = None
    surface: str = "rest"
    """Which surface answered: "rest" or "graphql" (failover)."""

    @property
    def content(self) -> str:
        """The answer's text ("" when there is none)."""
        return (self.response.content if self.response else None) or ""


class Execution(APIModel):
    """An execution as history shows it (`GET /api/v1/executions/{id}`)."""

    execution_id: str | None = None
    id: str | None = None
    agent_id: str | None = None
    kind: str | None = None
    status: str
    usage: Usage | None = None
    duration_ms: float | None = None
    model_requested: str | None = None
    model_resolved: str | None = None
    provider: str | None = None
    error: dict[str, Any] | None = None
    response: AgentResponse | None = None
    metadata: dict[str, Any] | None = None
    resource_id: str | None = None
    state_id: str | None = None
    retry_count: int | None = None
    last_event_id: int | None = None
    payload: str | None = None
    """`"erased"` once its payload was erased (its data subject's, or by retention)."""

    @property
    def content(self) -> str:
        return (self.response.content if self.response else None) or ""


class ExecutionPage(APIModel):
    executions: list[Execution]
    next_before: Any = None


class ModelInfo(APIModel):
    """A virtual name or a concrete model of `GET /api/v1/models`."""

    id: str
    kind: str
    provider: str | None = None
    capabilities: list[str] | None = None
    resolves_to: str | None = None
    candidates: list[Any] | None = None


class ModelMapping(APIModel):
    name: str
    candidates: list[str] = []
    strategy: str | None = None


class Tool(APIModel):
    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    source: str | None = None
    health: dict[str, Any] | None = None


class McpServer(APIModel):
    id: str
    name: str
    transport: str | None = None
    health: dict[str, Any] | None = None
    tool_count: int | None = None


class Budget(APIModel):
    scope: str
    limit_usd: float
    period: str
    enforcement: str | None = None
    thresholds: list[float] = []
    spent_usd: float | None = None
    reserved_usd: float | None = None
    remaining_usd: float | None = None
    period_start: str | None = None
    period_end: str | None = None


class AuditEntry(APIModel):
    at: Any = None
    kind: str
    actor: str | None = None
    target: str | None = None
    detail: Any = None
    source: str | None = None
    count: int | None = None


class Provider(APIModel):
    id: str
    type: str | None = None
    base_url: str | None = None
    models: list[dict[str, Any]] = []
    health: dict[str, Any] | None = None


class ChatCompletion(APIModel):
    """OpenAI's `chat.completion` (from `/v1/chat/completions`)."""

    id: str
    model: str | None = None
    choices: list[dict[str, Any]] = []
    usage: dict[str, Any] | None = None

    @property
    def content(self) -> str:
        if not self.choices:
            return ""
        return (self.choices[0].get("message") or {}).get("content") or ""
