"""What one execution will run: an agent's execute request, or an OpenAI chat completion,
turned into the same plan (messages, parameters, tools, model) for the execution loop."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from domain.agent import Agent
from domain.llm import ChatMessage, estimate_prompt_tokens
from domain.prompting import build_messages, system_text
from domain.tenant_limits import DEFAULT_COMPLETION_TOKENS, estimated_tokens
from domain.tool_specs import narrowed

NOT_RECORDED = ("subject", "caller")  # kept apart from the request its Started event records
Kind = Literal[
    "agent_execution", "chat_completion", "judge", "experiment_run", "collaboration_step"
]


@dataclass
class RunPlan:
    """One execution to run. `server_tools` run in the loop; `client_tools` (OpenAI tool
    definitions) are offered to the model and their calls go back to the client."""

    kind: Kind
    agent_id: str  # "" for a chat completion that names a model, not an agent
    agent_version: int
    model: str
    messages: list[ChatMessage]
    parameters: dict[str, Any]
    request: dict[str, Any]  # what the Started event records
    estimated_tokens: int
    server_tools: list[str] = field(default_factory=list)
    client_tools: list[dict[str, Any]] = field(default_factory=list)
    traceparent: str | None = None  # the W3C trace context of the caller, if it sent one
    cache: dict[str, Any] | None = None  # the request's `cache`
    agent_cache: dict[str, Any] | None = None
    agent_guardrails: dict[str, Any] | None = None
    agent_system: str = ""  # the agent's own system prompt: not screened by input checks
    subject: str | None = None  # the data subject it is about (`subject`, OpenAI's `user`)
    subject_ref: str | None = None  # or its reference alone (a judge's run of its execution)
    caller: str | None = None  # the credential that asked (`key:<id>`, `jwt:<sub>`)
    judge: dict[str, Any] | None = None  # its agent's judge, else the tenant's default
    # a replay's: the recorded tool calls (`Execution.tool_log`) that answer its own
    recorded_tools: list[dict[str, Any]] | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        return self.request.get("metadata") or {}


def agent_plan(agent: Agent, body: dict[str, Any]) -> RunPlan:
    """An agent's execute request: its prompt in the agent's template, its tools narrowed."""
    definition = agent.definition
    return RunPlan(
        kind="agent_execution",
        agent_id=str(agent.id),
        agent_version=agent.version,
        model=definition["model"],
        messages=build_messages(definition, body["prompt"], body.get("context")),
        parameters={**definition.get("parameters", {}), **body.get("parameters", {})},
        request={k: v for k, v in body.items() if k not in NOT_RECORDED},
        estimated_tokens=estimated_tokens(body, definition),
        server_tools=narrowed(definition.get("tools") or [], body.get("tools")),
        cache=body.get("cache"),
        agent_cache=definition.get("cache"),
        agent_guardrails=definition.get("guardrails"),
        agent_system=system_text(definition),
        subject=body.get("subject"),
        caller=body.get("caller"),
        judge=definition.get("judge"),
    )


def chat_plan(job: dict[str, Any], agent: Agent | None) -> RunPlan:
    """A chat completion (`ChatCompletionRequest.as_job()`), for a model or for `agent`.

    With an agent, its system prompt comes first and its parameters are the defaults; its
    tools run server-side unless the request brings its own, which then replace them.
    """
    messages = [ChatMessage.model_validate(m) for m in job["messages"]]
    parameters = dict(job.get("parameters") or {})
    client_tools = list(job.get("tools") or [])
    server_tools: list[str] = []
    model = job["model"]
    agent_id, version = "", 0
    agent_cache = agent_guardrails = judge = None
    system = ""
    if agent is not None:
        definition = agent.definition
        agent_id, version, model = str(agent.id), agent.version, definition["model"]
        system = system_text(definition)
        if system:
            messages = [ChatMessage(role="system", content=system), *messages]
        parameters = {**definition.get("parameters", {}), **parameters}
        if not client_tools:
            server_tools = list(definition.get("tools") or [])
        agent_cache, agent_guardrails = definition.get("cache"), definition.get("guardrails")
        judge = definition.get("judge")
    answer = parameters.get("max_tokens") or DEFAULT_COMPLETION_TOKENS
    return RunPlan(
        kind="chat_completion",
        agent_id=agent_id,
        agent_version=version,
        model=model,
        messages=messages,
        parameters=parameters,
        request={k: v for k, v in job.items() if k not in NOT_RECORDED},
        estimated_tokens=estimate_prompt_tokens(messages) + int(answer),
        server_tools=server_tools,
        client_tools=client_tools,
        cache=job.get("cache"),
        agent_cache=agent_cache,
        agent_guardrails=agent_guardrails,
        agent_system=system,
        subject=job.get("subject"),
        caller=job.get("caller"),
        judge=judge,
    )
