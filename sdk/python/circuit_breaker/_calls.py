"""Every operation as a `Call` (REST, plus GraphQL where the schema offers the same), built
once for both clients. The GraphQL halves map the schema's shapes onto the REST models."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx

from circuit_breaker._core import Call, GQLCall
from circuit_breaker.errors import NotFoundError
from circuit_breaker.models import (
    Agent,
    AuditEntry,
    Budget,
    Execution,
    ExecutionPage,
    ExecutionResult,
    McpServer,
    Provider,
    Tool,
)

AGENT_FIELDS = """id name description tenantId
  prompts { system userTemplate contextInstructions }
  llmConfig { temperature maxTokens topP frequencyPenalty presencePenalty stopSequences }
  virtualModelMappings { name }
  capabilities tools createdAt updatedAt"""

EXECUTION_FIELDS = """id agentId resourceId stateId status inputData outputData errorMessage
  startedAt completedAt durationMs retryCount"""

_PARAM_NAMES = {
    "temperature": "temperature",
    "max_tokens": "maxTokens",
    "top_p": "topP",
    "frequency_penalty": "frequencyPenalty",
    "presence_penalty": "presencePenalty",
    "stop": "stop",
    "seed": "seed",
}


def p(value: str) -> str:
    """A path segment, escaped."""
    return quote(str(value), safe="")


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


def agent_from_gql(node: dict[str, Any] | None, wanted: str | None = None) -> Agent:
    """A GraphQL `AgentDefinitionGQL` as the REST `Agent`."""
    if node is None:
        raise NotFoundError(f"agent {wanted} not found", status=404)
    cfg = node.get("llmConfig") or {}
    prompts = node.get("prompts") or {}
    mappings = node.get("virtualModelMappings") or []
    parameters = _drop_none(
        {
            "temperature": cfg.get("temperature"),
            "max_tokens": cfg.get("maxTokens"),
            "top_p": cfg.get("topP"),
            "frequency_penalty": cfg.get("frequencyPenalty"),
            "presence_penalty": cfg.get("presencePenalty"),
            "stop": cfg.get("stopSequences") or None,
        }
    )
    return Agent(
        id=node["id"],
        name=node["name"],
        tenant_id=node.get("tenantId"),
        description=node.get("description") or None,
        model=mappings[0]["name"] if mappings else None,
        system_prompt=prompts.get("system") or None,
        user_template=prompts.get("userTemplate") or None,
        context_instructions=prompts.get("contextInstructions"),
        parameters=parameters,
        tools=node.get("tools") or [],
        capabilities=node.get("capabilities") or [],
        created_at=node.get("createdAt"),
        updated_at=node.get("updatedAt"),
    )


def execution_from_gql(node: dict[str, Any] | None, wanted: str) -> Execution:
    """A GraphQL `AgentExecutionGQL` as the REST `Execution`."""
    if node is None:
        raise NotFoundError(f"execution {wanted} not found", status=404)
    status = str(node.get("status") or "").lower()
    output = node.get("outputData") or None
    return Execution(
        execution_id=node["id"],
        id=node["id"],
        agent_id=node.get("agentId") or None,
        status="failed" if status == "timeout" else status,
        duration_ms=node.get("durationMs"),
        error={"message": node["errorMessage"]} if node.get("errorMessage") else None,
        response=(
            {
                "content": output.get("content"),
                "finish_reason": output.get("finish_reason"),
                "tool_calls": output.get("tool_calls") or [],
            }
            if isinstance(output, dict)
            else None
        ),
        resource_id=node.get("resourceId"),
        state_id=node.get("stateId"),
        retry_count=node.get("retryCount"),
    )


def _agent(reply: httpx.Response) -> Agent:
    return Agent.model_validate(reply.json())


# ------------------------------------------------------------------ agents


def agent_create(body: dict[str, Any]) -> Call[Agent]:
    params = body.get("parameters") or {}
    gql_input = {
        "name": body["name"],
        "description": body.get("description") or "",
        "llmProvider": {"providerType": "openai", "model": body.get("model"), "apiKey": ""},
        "llmConfig": _drop_none(
            {
                "temperature": params.get("temperature", 0.7),
                "maxTokens": params.get("max_tokens"),
                "topP": params.get("top_p"),
                "frequencyPenalty": params.get("frequency_penalty"),
                "presencePenalty": params.get("presence_penalty"),
                "stopSequences": params.get("stop") or [],
            }
        ),
        "prompts": _drop_none(
            {
                "system": body.get("system_prompt") or "",
                "userTemplate": body.get("user_template") or "",
                "contextInstructions": body.get("context_instructions"),
            }
        ),
        "capabilities": body.get("capabilities") or [],
        "tools": body.get("tools") or [],
    }
    gql = GQLCall(
        "mutation CreateAgent($input: AgentDefinitionInput!) { createAgent(input: $input) { "
        + AGENT_FIELDS
        + " } }",
        {"input": gql_input},
        lambda d: agent_from_gql(d.get("createAgent")),
    )
    # tags have no place in the legacy input: such a create stays on REST
    return Call(
        "POST", "/api/v1/agents", _agent, json=body, graphql=None if body.get("tags") else gql
    )


def agent_get(agent_id: str) -> Call[Agent]:
    gql = GQLCall(
        "query GetAgent($id: String!) { agent(id: $id) { " + AGENT_FIELDS + " } }",
        {"id": agent_id},
        lambda d: agent_from_gql(d.get("agent"), agent_id),
    )
    return Call("GET", f"/api/v1/agents/{p(agent_id)}", _agent, graphql=gql)


def agent_list() -> Call[list[Agent]]:
    gql = GQLCall(
        "query ListAgents { agentList(first: 100) { edges { node { " + AGENT_FIELDS + " } } } }",
        {},
        lambda d: [agent_from_gql(e["node"]) for e in d["agentList"]["edges"]],
    )
    return Call(
        "GET",
        "/api/v1/agents",
        lambda r: [Agent.model_validate(a) for a in r.json()["agents"]],
        graphql=gql,
    )


def agent_update(agent_id: str, changes: dict[str, Any]) -> Call[Agent]:
    names = {
        "name": "name",
        "description": "description",
        "model": "model",
        "system_prompt": "systemPrompt",
        "user_template": "userTemplate",
        "context_instructions": "contextInstructions",
        "tools": "tools",
        "capabilities": "capabilities",
        "tags": "tags",
    }
    gql_input: dict[str, Any] = {names[k]: v for k, v in changes.items() if k in names}
    if "parameters" in changes and changes["parameters"] is not None:
        gql_input["parameters"] = {
            _PARAM_NAMES[k]: v for k, v in changes["parameters"].items() if k in _PARAM_NAMES
        }
    mappable = set(changes) <= {*names, "parameters"} and set(
        changes.get("parameters") or {}
    ) <= set(_PARAM_NAMES)
    gql = GQLCall(
        "mutation UpdateAgent($id: ID!, $input: AgentUpdateInput!) { updateAgent(id: $id, "
        "input: $input) { " + AGENT_FIELDS + " } }",
        {"id": agent_id, "input": gql_input},
        lambda d: agent_from_gql(d.get("updateAgent"), agent_id),
    )
    return Call(
        "PATCH",
        f"/api/v1/agents/{p(agent_id)}",
        _agent,
        json=changes,
        idempotent=True,  # a PATCH of fields to values: sending it twice ends the same
        graphql=gql if mappable else None,
    )


def agent_delete(agent_id: str) -> Call[None]:
    gql = GQLCall(
        "mutation DeleteAgent($id: ID!) { deleteAgent(id: $id) { success id } }",
        {"id": agent_id},
        lambda d: None,
    )
    return Call("DELETE", f"/api/v1/agents/{p(agent_id)}", lambda r: None, graphql=gql)


def _messages(prompt: str, context: Any) -> list[dict[str, str]] | None:
    """Chat messages for the GraphQL execute, or None when `context` has no such form."""
    out: list[dict[str, str]] = []
    if isinstance(context, list):
        for m in context:
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                return None
            out.append({"role": str(m.get("role") or "user"), "content": m["content"]})
    elif context is not None:
        return None
    out.append({"role": "user", "content": prompt})
    return out


def _result_from_gql(agent_id: str, d: dict[str, Any]) -> ExecutionResult:
    answer = d["llmChatCompletion"]
    usage = answer.get("usage") or {}
    choice = (answer.get("choices") or [{}])[0]
    routing = answer.get("routingInfo") or {}
    return ExecutionResult(
        execution_id=answer["id"],
        agent_id=agent_id,
        status="completed",
        response={
            "content": (choice.get("message") or {}).get("content"),
            "finish_reason": choice.get("finishReason"),
        },
        usage={
            "prompt_tokens": usage.get("promptTokens", 0),
            "completion_tokens": usage.get("completionTokens", 0),
            "total_tokens": usage.get("totalTokens", 0),
            "cost_usd": usage.get("estimatedCost"),
        },
        metadata={
            "model_resolved": answer.get("model"),
            "provider": answer.get("provider"),
            "fallback_used": routing.get("fallbackUsed"),
            "duration_ms": routing.get("latencyMs"),
        },
        surface="graphql",
    )


def agent_execute(agent_id: str, body: dict[str, Any]) -> Call[ExecutionResult]:
    gql: GQLCall[ExecutionResult] | None = None
    messages = _messages(body["prompt"], body.get("context"))
    params = body.get("parameters") or {}
    gql_params = {
        "temperature": "temperature",
        "max_tokens": "maxTokens",
        "top_p": "topP",
        "frequency_penalty": "frequencyPenalty",
        "presence_penalty": "presencePenalty",
        "stop": "stop",
    }
    mappable = not body.get("tools") and not body.get("metadata")  # GraphQL has neither
    if messages is not None and set(params) <= set(gql_params) and mappable:
        gql = GQLCall(
            "mutation Execute($input: LlmChatCompletionInput!) { llmChatCompletion(input: "
            "$input) { id model provider choices { message { role content } finishReason } "
            "usage { promptTokens completionTokens totalTokens estimatedCost } "
            "routingInfo { latencyMs fallbackUsed } } }",
            {
                "input": {
                    "model": f"agent:{agent_id}",
                    "messages": messages,
                    **{gql_params[k]: v for k, v in params.items()},
                    # the data subject travels as the legacy input's `user`
                    **({"user": body["subject"]} if body.get("subject") else {}),
                }
            },
            lambda d: _result_from_gql(agent_id, d),
        )
    return Call(
        "POST",
        f"/api/v1/agents/{p(agent_id)}/execute",
        lambda r: ExecutionResult.model_validate(r.json()),
        json=body,
        graphql=gql,
    )


# ------------------------------------------------------------------ executions


def execution_get(execution_id: str) -> Call[Execution]:
    gql = GQLCall(
        "query GetExecution($id: String!) { agentExecution(id: $id) { " + EXECUTION_FIELDS + " } }",
        {"id": execution_id},
        lambda d: execution_from_gql(d.get("agentExecution"), execution_id),
    )
    return Call(
        "GET",
        f"/api/v1/executions/{p(execution_id)}",
        lambda r: Execution.model_validate(r.json()),
        graphql=gql,
    )


def execution_cancel(execution_id: str) -> Call[Execution]:
    """REST only. The server answers 200 again for an execution already cancelled, so the
    call is idempotent (retried); one that ended otherwise is a 409 `ConflictError`."""
    return Call(
        "POST",
        f"/api/v1/executions/{p(execution_id)}/cancel",
        lambda r: Execution.model_validate(r.json()),
        idempotent=True,
    )


def execution_list(params: dict[str, Any]) -> Call[ExecutionPage]:
    return Call(
        "GET",
        "/api/v1/executions",
        lambda r: ExecutionPage.model_validate(r.json()),
        params=params,
    )


# ------------------------------------------------------------------ the rest (REST only)


def tools_list() -> Call[list[Tool]]:
    return Call(
        "GET", "/api/v1/tools", lambda r: [Tool.model_validate(t) for t in r.json()["tools"]]
    )


def mcp_create(body: dict[str, Any]) -> Call[McpServer]:
    return Call(
        "POST", "/api/v1/mcp/servers", lambda r: McpServer.model_validate(r.json()), json=body
    )


def mcp_list() -> Call[list[McpServer]]:
    return Call(
        "GET",
        "/api/v1/mcp/servers",
        lambda r: [McpServer.model_validate(s) for s in r.json()["servers"]],
    )


def mcp_refresh(server_id: str) -> Call[dict[str, Any]]:
    return Call(
        "POST", f"/api/v1/mcp/servers/{p(server_id)}/refresh", lambda r: r.json(), idempotent=True
    )


def mcp_delete(server_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/api/v1/mcp/servers/{p(server_id)}", lambda r: r.json())


def analytics(question: str, params: dict[str, Any]) -> Call[Any]:
    def parse(r: httpx.Response) -> Any:
        if r.headers.get("content-type", "").startswith("text/csv"):
            return r.text
        return r.json()

    return Call("GET", f"/api/v1/analytics/{question}", parse, params=params)


def budget_set(scope: str, body: dict[str, Any]) -> Call[Budget]:
    return Call(
        "PUT", f"/api/v1/budgets/{p(scope)}", lambda r: Budget.model_validate(r.json()), json=body
    )


def budget_get(scope: str) -> Call[Budget]:
    return Call("GET", f"/api/v1/budgets/{p(scope)}", lambda r: Budget.model_validate(r.json()))


def budget_list() -> Call[list[Budget]]:
    return Call(
        "GET",
        "/api/v1/budgets",
        lambda r: [Budget.model_validate(b) for b in r.json()["budgets"]],
    )


def budget_delete(scope: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/api/v1/budgets/{p(scope)}", lambda r: r.json())


def subject_list(subject: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/api/v1/subjects/{p(subject)}", lambda r: r.json())


def _ndjson(reply: httpx.Response) -> list[dict[str, Any]]:
    return [json.loads(line) for line in reply.text.splitlines() if line.strip()]


def subject_export(subject: str) -> Call[list[dict[str, Any]]]:
    return Call(
        "GET",
        f"/api/v1/subjects/{p(subject)}/export",
        _ndjson,
        headers={"Accept": "application/x-ndjson"},
    )


def subject_erase(subject: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/api/v1/subjects/{p(subject)}", lambda r: r.json())


def retention_get() -> Call[dict[str, Any]]:
    return Call("GET", "/api/v1/retention", lambda r: r.json())


def retention_set(body: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", "/api/v1/retention", lambda r: r.json(), json=body)


def retention_clear() -> Call[dict[str, Any]]:
    return Call("DELETE", "/api/v1/retention", lambda r: r.json())


def _json(reply: httpx.Response) -> Any:
    return reply.json()


def execution_feedback(execution_id: str, body: dict[str, Any]) -> Call[dict[str, Any]]:
    """Not retried: a second POST would record a second score."""
    return Call("POST", f"/api/v1/executions/{p(execution_id)}/feedback", _json, json=body)


def execution_judge(execution_id: str, spec: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", f"/api/v1/executions/{p(execution_id)}/judge", _json, json=spec)


def judge_get() -> Call[dict[str, Any]]:
    return Call("GET", "/api/v1/judge", _json)


def judge_set(spec: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("PUT", "/api/v1/judge", _json, json=spec)


def judge_clear() -> Call[dict[str, Any]]:
    return Call("DELETE", "/api/v1/judge", _json)


def experiment_create(body: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", "/api/v1/experiments", _json, json=body)


def experiment_get(experiment_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/api/v1/experiments/{p(experiment_id)}", _json)


def experiment_list() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/api/v1/experiments", lambda r: r.json()["experiments"])


def experiment_cancel(experiment_id: str) -> Call[dict[str, Any]]:
    """Idempotent in effect: a repeat after it took is a 409 `ConflictError`."""
    return Call("POST", f"/api/v1/experiments/{p(experiment_id)}/cancel", _json)


def collaboration_create(definition: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", "/api/v1/collaborations", _json, json=definition)


def collaboration_get(collaboration_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/api/v1/collaborations/{p(collaboration_id)}", _json)


def collaboration_list() -> Call[list[dict[str, Any]]]:
    return Call("GET", "/api/v1/collaborations", lambda r: r.json()["collaborations"])


def collaboration_update(collaboration_id: str, changes: dict[str, Any]) -> Call[dict[str, Any]]:
    path = f"/api/v1/collaborations/{p(collaboration_id)}"
    return Call("PATCH", path, _json, json=changes, idempotent=True)


def collaboration_delete(collaboration_id: str) -> Call[dict[str, Any]]:
    return Call("DELETE", f"/api/v1/collaborations/{p(collaboration_id)}", _json)


def collaboration_run(collaboration_id: str | None, body: dict[str, Any]) -> Call[dict[str, Any]]:
    """Not retried: a repeat would start a second run (read the first at `run_get`)."""
    target = "run" if collaboration_id is None else f"{p(collaboration_id)}/run"
    return Call("POST", f"/api/v1/collaborations/{target}", _json, json=body)


def run_get(run_id: str) -> Call[dict[str, Any]]:
    return Call("GET", f"/api/v1/collaboration-runs/{p(run_id)}", _json)


def run_list(params: dict[str, Any]) -> Call[list[dict[str, Any]]]:
    return Call("GET", "/api/v1/collaboration-runs", lambda r: r.json()["runs"], params=params)


def run_cancel(run_id: str) -> Call[dict[str, Any]]:
    """A repeat after it took is a 409 `ConflictError`."""
    return Call("POST", f"/api/v1/collaboration-runs/{p(run_id)}/cancel", _json)


def audit_list(params: dict[str, Any]) -> Call[list[AuditEntry]]:
    return Call(
        "GET",
        "/api/v1/audit",
        lambda r: [AuditEntry.model_validate(e) for e in r.json()["entries"]],
        params=params,
    )


def providers_list() -> Call[list[Provider]]:
    return Call(
        "GET",
        "/api/v1/providers",
        lambda r: [Provider.model_validate(x) for x in r.json()["providers"]],
    )


def graphql_call(query: str, variables: dict[str, Any] | None) -> Call[dict[str, Any]]:
    """A raw GraphQL operation (always over GraphQL: it has no REST half)."""
    gql = GQLCall(query, variables or {}, lambda d: d)
    return Call("POST", "/graphql", lambda r: r.json().get("data"), graphql=gql)


def chat_completion(body: dict[str, Any]) -> Call[dict[str, Any]]:
    return Call("POST", "/v1/chat/completions", lambda r: r.json(), json=body)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
