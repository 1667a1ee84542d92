"""`client.graphql`: raw `query()`, the agent extension fields (§12.1), the legacy
operations, and subscriptions over WebSocket (`graphql-transport-ws`; needs the `ws`
extra, the `websockets` package)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from circuit_breaker import _calls as calls
from circuit_breaker._core import Call, Config, GQLCall
from circuit_breaker._transport import AsyncRunner, SyncRunner
from circuit_breaker.errors import CircuitBreakerError, GraphQLError, error_from_graphql
from circuit_breaker.events import StreamEvent, parse_event
from circuit_breaker.models import Execution

PROTOCOL = "graphql-transport-ws"


class GQLModel(BaseModel):
    """Base of the GraphQL answer models: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ExecutionEndpoints(GQLModel):
    execute: str
    stream: str
    history: str
    resume: str


class StreamingConfig(GQLModel):
    endpoint: str
    protocol: str
    event_types: list[str] = Field(alias="eventTypes")
    heartbeat_seconds: float = Field(alias="heartbeatSeconds")
    resumable: bool
    resume_header: str = Field(alias="resumeHeader")
    default_on_disconnect: str = Field(alias="defaultOnDisconnect")


class VirtualModelMapping(GQLModel):
    name: str
    kind: str
    source: str | None = None
    strategy: str | None = None
    candidates: list[str] | None = None
    resolves_to: str | None = Field(default=None, alias="resolvesTo")
    available: bool | None = None


class ToolConfiguration(GQLModel):
    name: str
    description: str
    source: str
    health: dict[str, Any]


class PerformanceMetrics(GQLModel):
    executions: int
    succeeded: int
    failed: int
    success_rate: float | None = Field(default=None, alias="successRate")
    total_tokens: int = Field(alias="totalTokens")
    cost_usd: float = Field(alias="costUsd")


class ExecutionSummary(GQLModel):
    id: str
    status: str
    kind: str
    total_tokens: int = Field(alias="totalTokens")
    cost_usd: float = Field(alias="costUsd")


class AgentExtensions(GQLModel):
    """An agent with the extension fields of the schema (§12.1)."""

    id: str
    name: str
    tenant_id: str = Field(alias="tenantId")
    tenant_permissions: list[str] = Field(alias="tenantPermissions")
    execution_endpoints: ExecutionEndpoints = Field(alias="executionEndpoints")
    streaming_config: StreamingConfig = Field(alias="streamingConfig")
    virtual_model_mappings: list[VirtualModelMapping] | None = Field(
        default=None, alias="virtualModelMappings"
    )
    tool_configurations: list[ToolConfiguration] | None = Field(
        default=None, alias="toolConfigurations"
    )
    performance_metrics: PerformanceMetrics | None = Field(default=None, alias="performanceMetrics")
    execution_history: list[ExecutionSummary] | None = None


class BudgetStatus(GQLModel):
    budget_id: str = Field(alias="budgetId")
    limit: float
    used: float
    percentage_used: float = Field(alias="percentageUsed")
    is_exhausted: bool = Field(alias="isExhausted")
    is_warning: bool = Field(alias="isWarning")
    remaining: float
    message: str


EXTENSION_FIELDS = """id name tenantId tenantPermissions
  executionEndpoints { execute stream history resume }
  streamingConfig { endpoint protocol eventTypes heartbeatSeconds resumable resumeHeader
    defaultOnDisconnect }
  virtualModelMappings { name kind source strategy candidates resolvesTo available }
  toolConfigurations { name description source health { status lastError } }
  performanceMetrics(window: $window) { executions succeeded failed successRate totalTokens
    costUsd }
  executionHistory(first: $first) { edges { node { id status kind totalTokens costUsd } } }"""

BUDGET_FIELDS = "budgetId limit used percentageUsed isExhausted isWarning remaining message"


def _extensions(data: dict[str, Any], agent_id: str) -> AgentExtensions:
    node = data.get("agent")
    if node is None:
        calls.agent_from_gql(None, agent_id)  # raises NotFoundError
    history = node.get("executionHistory")
    node = {**node, "execution_history": [e["node"] for e in history["edges"]] if history else None}
    node.pop("executionHistory", None)
    return AgentExtensions.model_validate(node)


def _gql(query: str, variables: dict[str, Any], parse: Any) -> Call[Any]:
    return Call("POST", "/graphql", lambda r: None, graphql=GQLCall(query, variables, parse))


def _ws_url(config: Config) -> str:
    base = config.base_url
    scheme = "wss" if base.startswith("https") else "ws"
    return f"{scheme}://{base.split('://', 1)[1]}/graphql"


def _init_payload(config: Config) -> dict[str, Any]:
    headers = config.auth_headers()
    return {k: v for k, v in headers.items() if k in ("Authorization", "X-Tenant-ID")}


def _read(message: dict[str, Any], sub_id: str) -> tuple[str, Any]:
    """What one server message means for subscription `sub_id`: ("next", data),
    ("complete", None), ("ignore", None); raises on `error`."""
    kind = message.get("type")
    if kind == "ping":
        return "ping", None
    if message.get("id") != sub_id:
        return "ignore", None
    if kind == "next":
        payload = message.get("payload") or {}
        if payload.get("errors"):
            raise error_from_graphql(payload["errors"])
        return "next", payload.get("data")
    if kind == "error":
        raise error_from_graphql(message.get("payload") or [])
    if kind == "complete":
        return "complete", None
    return "ignore", None


def _no_websockets() -> CircuitBreakerError:
    return CircuitBreakerError(
        "GraphQL subscriptions need the `websockets` package: pip install 'circuit-breaker-sdk[ws]'"
    )


def _field_value(data: Any) -> Any:
    """The one root field's value of a subscription message, a JSON string decoded."""
    if not isinstance(data, dict) or len(data) != 1:
        return data
    value = next(iter(data.values()))
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_event(item: dict[str, Any]) -> StreamEvent | None:
    eid = item.get("id")
    return parse_event(
        item.get("event", ""), json.dumps(item.get("data")), None if eid is None else str(eid)
    )


_EXEC_STREAM = "subscription($id: String!) { agentExecutionStream(executionId: $id) }"
_COSTS = "subscription($userId: String) { costUpdates(userId: $userId) }"


# ---------------------------------------------------------------- operations (both clients)


def op_query(document: str, variables: dict[str, Any] | None) -> Call[dict[str, Any]]:
    return _gql(document, variables or {}, lambda d: d)


def op_agent(agent_id: str, window: str, first: int) -> Call[AgentExtensions]:
    doc = (
        "query AgentExtensions($id: String!, $window: MetricsWindow!, $first: Int!) "
        "{ agent(id: $id) { " + EXTENSION_FIELDS + " } }"
    )
    variables = {"id": agent_id, "window": window, "first": first}
    return _gql(doc, variables, lambda d: _extensions(d, agent_id))


def op_agent_list(filter_: dict[str, Any] | None, first: int, after: str | None) -> Call[Any]:
    doc = (
        "query AgentList($filter: AgentFilterInput, $first: Int!, $after: String) "
        "{ agentList(filter: $filter, first: $first, after: $after) { totalCount "
        "pageInfo { hasNextPage endCursor } edges { cursor node { "
        + calls.AGENT_FIELDS
        + " } } } }"
    )

    def parse(d: dict[str, Any]) -> dict[str, Any]:
        out = d["agentList"]
        return {**out, "agents": [calls.agent_from_gql(e["node"]) for e in out["edges"]]}

    return _gql(doc, {"filter": filter_, "first": first, "after": after}, parse)


def op_executions(resource_id: str) -> Call[list[Execution]]:
    doc = (
        "query($r: String!) { resourceExecutions(resourceId: $r) { "
        + calls.EXECUTION_FIELDS
        + " } }"
    )
    return _gql(
        doc,
        {"r": resource_id},
        lambda d: [calls.execution_from_gql(n, n["id"]) for n in d["resourceExecutions"]],
    )


def op_llm_chat(model: str, messages: list[dict[str, str]], options: dict[str, Any]) -> Call[Any]:
    doc = (
        "mutation($input: LlmChatCompletionInput!) { llmChatCompletion(input: $input) { "
        "id model provider choices { index message { role content } finishReason } "
        "usage { promptTokens completionTokens totalTokens estimatedCost } "
        "routingInfo { selectedProvider routingStrategy latencyMs retryCount fallbackUsed } } }"
    )
    variables = {"input": {"model": model, "messages": messages, **options}}
    return _gql(doc, variables, lambda d: d["llmChatCompletion"])


def op_llm_providers() -> Call[list[dict[str, Any]]]:
    doc = (
        "{ llmProviders { id providerType name baseUrl models { id name } "
        "healthStatus { isHealthy lastCheck errorRate averageLatencyMs } } }"
    )
    return _gql(doc, {}, lambda d: d["llmProviders"])


def op_budget_status(user_id: str | None, project_id: str | None) -> Call[BudgetStatus]:
    doc = (
        "query($u: String, $p: String) { budgetStatus(userId: $u, projectId: $p) { "
        + BUDGET_FIELDS
        + " } }"
    )
    return _gql(
        doc,
        {"u": user_id, "p": project_id},
        lambda d: BudgetStatus.model_validate(d["budgetStatus"]),
    )


def op_set_budget(
    limit: float, period: str, warning: float, user_id: str | None, project_id: str | None
) -> Call[BudgetStatus]:
    doc = "mutation($input: BudgetInput!) { setBudget(input: $input) { " + BUDGET_FIELDS + " } }"
    variables = {
        "input": {
            "limit": limit,
            "period": period,
            "warningThreshold": warning,
            "userId": user_id,
            "projectId": project_id,
        }
    }
    return _gql(doc, variables, lambda d: BudgetStatus.model_validate(d["setBudget"]))


def op_cost_analytics(
    start_date: str, end_date: str, user_id: str | None, project_id: str | None
) -> Call[dict[str, Any]]:
    doc = (
        "query($input: CostAnalyticsInput!) { costAnalytics(input: $input) { totalCost "
        "totalTokens averageCostPerToken providerBreakdown modelBreakdown dailyCosts "
        "periodStart periodEnd } }"
    )
    variables = {
        "input": {
            "startDate": start_date,
            "endDate": end_date,
            "userId": user_id,
            "projectId": project_id,
        }
    }
    return _gql(doc, variables, lambda d: d["costAnalytics"])


class GraphQL:
    """`client.graphql` of `Client`."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run any operation (query or mutation): its `data`, or the typed error."""
        return self._r.run_on(op_query(document, variables), "graphql")

    def agent(
        self, agent_id: str, *, window: str = "LAST_24_HOURS", first: int = 20
    ) -> AgentExtensions:
        """One agent with its extension fields (endpoints, mappings, tools, metrics, history)."""
        return self._r.run_on(op_agent(agent_id, window, first), "graphql")

    def agent_list(
        self,
        *,
        filter: dict[str, Any] | None = None,  # noqa: A002
        first: int = 50,
        after: str | None = None,
    ) -> dict[str, Any]:
        """`agentList`: `totalCount`, `pageInfo`, `edges`, and `agents` as REST shows them."""
        return self._r.run_on(op_agent_list(filter, first, after), "graphql")

    def resource_executions(self, resource_id: str) -> list[Execution]:
        """The executions tagged with a workflow resource, newest first."""
        return self._r.run_on(op_executions(resource_id), "graphql")

    # ---------------------------------------------------------------- legacy operations

    def llm_chat_completion(
        self, model: str, messages: list[dict[str, str]], **options: Any
    ) -> dict[str, Any]:
        """The legacy `llmChatCompletion` (deprecated: prefer `POST /v1/chat/completions`);
        `options` in the schema's camelCase (`maxTokens`, …)."""
        return self._r.run_on(op_llm_chat(model, messages, options), "graphql")

    def llm_providers(self) -> list[dict[str, Any]]:
        return self._r.run_on(op_llm_providers(), "graphql")

    def budget_status(
        self, *, user_id: str | None = None, project_id: str | None = None
    ) -> BudgetStatus:
        return self._r.run_on(op_budget_status(user_id, project_id), "graphql")

    def set_budget(
        self,
        *,
        limit: float,
        period: str = "monthly",
        warning_threshold: float = 0.8,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> BudgetStatus:
        call = op_set_budget(limit, period, warning_threshold, user_id, project_id)
        return self._r.run_on(call, "graphql")

    def cost_analytics(
        self,
        *,
        start_date: str,
        end_date: str,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        call = op_cost_analytics(start_date, end_date, user_id, project_id)
        return self._r.run_on(call, "graphql")

    # ---------------------------------------------------------------- subscriptions

    def subscribe(self, document: str, variables: dict[str, Any] | None = None) -> Iterator[Any]:
        """Each `data` of a subscription until the server completes it (a generator: close
        it to stop the subscription)."""
        try:
            from websockets.sync.client import connect
        except ImportError as exc:
            raise _no_websockets() from exc
        config = self._r.config
        with connect(
            _ws_url(config), subprotocols=[PROTOCOL], open_timeout=config.timeout,  # type: ignore[list-item]
            **config.ws_ssl(),
        ) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": _init_payload(config)}))
            ack = json.loads(ws.recv(timeout=config.timeout))
            if ack.get("type") != "connection_ack":
                raise GraphQLError(f"connection refused: {ack}")
            ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": document, "variables": variables or {}},
                    }
                )
            )
            completed = False
            try:
                while True:
                    kind, data = _read(json.loads(ws.recv()), "1")
                    if kind == "ping":
                        ws.send(json.dumps({"type": "pong"}))
                    elif kind == "next":
                        yield data
                    elif kind == "complete":
                        completed = True
                        return
            finally:
                if not completed:
                    try:
                        ws.send(json.dumps({"id": "1", "type": "complete"}))
                    except Exception:  # the socket may already be gone
                        pass

    def execution_stream(self, execution_id: str) -> Iterator[StreamEvent]:
        """`agentExecutionStream` as typed events (live, or replayed once ended)."""
        for data in self.subscribe(_EXEC_STREAM, {"id": execution_id}):
            event = _as_event(_field_value(data))
            if event is not None:
                yield event

    def cost_updates(self, user_id: str | None = None) -> Iterator[dict[str, Any]]:
        """`costUpdates`: each execution's cost as it ends."""
        for data in self.subscribe(_COSTS, {"userId": user_id}):
            yield _field_value(data)


class AsyncGraphQL:
    """`client.graphql` of `AsyncClient`."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def query(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run any operation (query or mutation): its `data`, or the typed error."""
        return await self._r.run_on(op_query(document, variables), "graphql")

    async def agent(
        self, agent_id: str, *, window: str = "LAST_24_HOURS", first: int = 20
    ) -> AgentExtensions:
        """One agent with its extension fields (endpoints, mappings, tools, metrics, history)."""
        return await self._r.run_on(op_agent(agent_id, window, first), "graphql")

    async def agent_list(
        self,
        *,
        filter: dict[str, Any] | None = None,  # noqa: A002
        first: int = 50,
        after: str | None = None,
    ) -> dict[str, Any]:
        """`agentList`: `totalCount`, `pageInfo`, `edges`, and `agents` as REST shows them."""
        return await self._r.run_on(op_agent_list(filter, first, after), "graphql")

    async def resource_executions(self, resource_id: str) -> list[Execution]:
        """The executions tagged with a workflow resource, newest first."""
        return await self._r.run_on(op_executions(resource_id), "graphql")

    # ---------------------------------------------------------------- legacy operations

    async def llm_chat_completion(
        self, model: str, messages: list[dict[str, str]], **options: Any
    ) -> dict[str, Any]:
        """The legacy `llmChatCompletion` (deprecated: prefer `POST /v1/chat/completions`);
        `options` in the schema's camelCase (`maxTokens`, …)."""
        return await self._r.run_on(op_llm_chat(model, messages, options), "graphql")

    async def llm_providers(self) -> list[dict[str, Any]]:
        return await self._r.run_on(op_llm_providers(), "graphql")

    async def budget_status(
        self, *, user_id: str | None = None, project_id: str | None = None
    ) -> BudgetStatus:
        return await self._r.run_on(op_budget_status(user_id, project_id), "graphql")

    async def set_budget(
        self,
        *,
        limit: float,
        period: str = "monthly",
        warning_threshold: float = 0.8,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> BudgetStatus:
        call = op_set_budget(limit, period, warning_threshold, user_id, project_id)
        return await self._r.run_on(call, "graphql")

    async def cost_analytics(
        self,
        *,
        start_date: str,
        end_date: str,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> dict[str, Any]:
        call = op_cost_analytics(start_date, end_date, user_id, project_id)
        return await self._r.run_on(call, "graphql")

    # ---------------------------------------------------------------- subscriptions

    async def subscribe(
        self, document: str, variables: dict[str, Any] | None = None
    ) -> AsyncIterator[Any]:
        """Each `data` of a subscription until the server completes it."""
        try:
            from websockets.asyncio.client import connect
        except ImportError as exc:
            raise _no_websockets() from exc
        config = self._r.config
        async with connect(
            _ws_url(config), subprotocols=[PROTOCOL], open_timeout=config.timeout,
            **config.ws_ssl(),
        ) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "connection_init", "payload": _init_payload(config)}))
            ack = json.loads(await ws.recv())
            if ack.get("type") != "connection_ack":
                raise GraphQLError(f"connection refused: {ack}")
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": document, "variables": variables or {}},
                    }
                )
            )
            while True:
                kind, data = _read(json.loads(await ws.recv()), "1")
                if kind == "ping":
                    await ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    yield data
                elif kind == "complete":
                    return

    async def execution_stream(self, execution_id: str) -> AsyncIterator[StreamEvent]:
        async for data in self.subscribe(_EXEC_STREAM, {"id": execution_id}):
            event = _as_event(_field_value(data))
            if event is not None:
                yield event

    async def cost_updates(self, user_id: str | None = None) -> AsyncIterator[dict[str, Any]]:
        async for data in self.subscribe(_COSTS, {"userId": user_id}):
            yield _field_value(data)
