"""The legacy SDK's names on the new client, deprecated: its agent builder
(`create_agent(name).set_model(…).build()`), chat builders and factories (`create_chat`,
`create_smart_chat`, …), `COMMON_MODELS`, `llm(client).chat(model, message)` over
`/v1/chat/completions`, and the budget helpers. Each call warns with `DeprecationWarning`
and names what replaces it."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

from circuit_breaker.client import Client
from circuit_breaker.graphql import BudgetStatus
from circuit_breaker.models import Agent

F = TypeVar("F", bound=Callable[..., Any])


def _deprecated(replacement: str) -> Callable[[F], F]:
    def wrap(func: F) -> F:
        @functools.wraps(func)
        def inner(*args: Any, **kwargs: Any) -> Any:
            warnings.warn(
                f"circuit_breaker.legacy.{func.__qualname__} is deprecated: use {replacement}",
                DeprecationWarning,
                stacklevel=2,
            )
            return func(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


class COMMON_MODELS:  # the legacy SDK's name
    """The legacy SDK's model constants."""

    SMART_FAST = "cb:fastest"
    SMART_CHEAP = "cb:cost-optimal"
    SMART_BALANCED = "cb:smart-chat"
    SMART_CREATIVE = "cb:creative"
    SMART_CODING = "cb:coding"
    SMART_ANALYSIS = "cb:analysis"
    GPT_O4_MINI = "o4-mini-2025-04-16"
    CLAUDE_4_SONNET = "claude-sonnet-4-20250514"
    GEMINI_PRO = "gemini-2.5-pro"
    QWEN_CODER_3B = "qwen2.5-coder:3b"
    NOMIC_EMBED = "nomic-embed-text:latest"
    ALL_MINILM = "all-minilm:l6-v2"


class AgentBuilder:
    """The legacy `createAgent(name)` builder; `build()` gives the keyword arguments of
    `client.agents.create` (the legacy `type` and `memory` have no equivalent and are
    dropped, as the legacy SDK dropped them)."""

    def __init__(self, name: str) -> None:
        self._fields: dict[str, Any] = {"name": name, "model": "gpt-4o-mini"}
        self._parameters: dict[str, Any] = {}
        self._tools: list[str] = []

    def set_name(self, name: str) -> AgentBuilder:
        self._fields["name"] = name
        return self

    def set_description(self, description: str) -> AgentBuilder:
        self._fields["description"] = description
        return self

    def set_type(self, _type: str) -> AgentBuilder:
        return self

    def set_llm_provider(self, _provider: str) -> AgentBuilder:
        return self  # the provider follows from the model here

    def set_model(self, model: str) -> AgentBuilder:
        self._fields["model"] = model
        return self

    def set_temperature(self, temperature: float) -> AgentBuilder:
        self._parameters["temperature"] = temperature
        return self

    def set_max_tokens(self, max_tokens: int) -> AgentBuilder:
        self._parameters["max_tokens"] = max_tokens
        return self

    def set_system_prompt(self, prompt: str) -> AgentBuilder:
        self._fields["system_prompt"] = prompt
        return self

    def set_user_template(self, template: str) -> AgentBuilder:
        self._fields["user_template"] = template
        return self

    def add_tool(self, name: str, _description: str = "", _parameters: Any = None) -> AgentBuilder:
        """Tools are named (built-in or MCP tools); the legacy description and schema go."""
        self._tools.append(name)
        return self

    def add_capability(self, capability: str) -> AgentBuilder:
        self._fields.setdefault("capabilities", []).append(capability)
        return self

    def set_memory(self, *_args: Any, **_kwargs: Any) -> AgentBuilder:
        return self

    def build(self) -> dict[str, Any]:
        out = dict(self._fields)
        if self._parameters:
            out["parameters"] = dict(self._parameters)
        if self._tools:
            out["tools"] = list(self._tools)
        return out


@_deprecated("client.agents.create(name=…, model=…, system_prompt=…)")
def create_agent(name: str) -> AgentBuilder:
    """The legacy agent builder."""
    return AgentBuilder(name)


class LegacyAgents:
    """`client.agents()` of the legacy SDK."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @_deprecated("client.agents.create(**fields)")
    def create(self, definition: dict[str, Any]) -> Agent:
        return self._client.agents.create(**definition)

    @_deprecated("client.agents.get(id)")
    def get(self, agent_id: str) -> Agent:
        return self._client.agents.get(agent_id)

    @_deprecated("client.agents.list()")
    def list(self) -> list[Agent]:
        return self._client.agents.list()

    @_deprecated("client.agents.delete(id)")
    def delete(self, agent_id: str) -> None:
        self._client.agents.delete(agent_id)

    @_deprecated("client.agents.execute(id, prompt=…)")
    def chat(self, agent_id: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        """The legacy `agents().chat(id, msgs)`: the agent's model, OpenAI's answer shape."""
        return self._client.chat_completion(model=f"agent:{agent_id}", messages=messages)


def agents(client: Client) -> LegacyAgents:
    """The legacy `client.agents()` accessor."""
    return LegacyAgents(client)


class LLM:
    """The legacy `client.llm()`: OpenAI-compatible chat over `/v1/chat/completions`."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @_deprecated("client.chat_completion(model=…, messages=…)")
    def chat(
        self,
        model: str,
        message: str,
        *,
        system_prompt: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """One message in, the answer's text out."""
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": message})
        body: dict[str, Any] = {"model": model, "messages": messages}
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        answer = self._client.chat_completion(**body)
        return answer["choices"][0]["message"]["content"] or ""

    @_deprecated("client.chat_completion(**request)")
    def chat_completion(self, request: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in request.items() if k != "circuit_breaker"}
        return self._client.chat_completion(**body)

    smart_completion = chat_completion


def llm(client: Client) -> LLM:
    """The legacy `client.llm()` accessor."""
    return LLM(client)


class ChatBuilder:
    """The legacy chat builder; the `circuit_breaker` routing options are accepted and not
    sent (routing is the virtual model's here)."""

    def __init__(self, model: str) -> None:
        self._request: dict[str, Any] = {"model": model, "messages": []}

    def set_system_prompt(self, prompt: str) -> ChatBuilder:
        self._request["messages"].insert(0, {"role": "system", "content": prompt})
        return self

    def add_user_message(self, content: str) -> ChatBuilder:
        self._request["messages"].append({"role": "user", "content": content})
        return self

    def add_assistant_message(self, content: str) -> ChatBuilder:
        self._request["messages"].append({"role": "assistant", "content": content})
        return self

    def set_temperature(self, temperature: float) -> ChatBuilder:
        self._request["temperature"] = temperature
        return self

    def set_max_tokens(self, max_tokens: int) -> ChatBuilder:
        self._request["max_tokens"] = max_tokens
        return self

    def set_stream(self, _stream: bool) -> ChatBuilder:
        return self  # use client.agents.stream / the openai SDK for streams

    def _ignored(self, *_args: Any, **_kwargs: Any) -> ChatBuilder:
        return self

    set_routing_strategy = set_task_type = set_fallback_models = _ignored
    set_max_latency = set_max_cost_per_1k_tokens = set_budget_constraint = _ignored
    set_circuit_breaker_options = _ignored

    def build(self) -> dict[str, Any]:
        return {**self._request, "messages": list(self._request["messages"])}

    def execute(self, llm_client: LLM) -> str:
        """Send it; the answer's text."""
        answer = llm_client.chat_completion(self.build())
        return answer["choices"][0]["message"]["content"] or ""

    execute_smart = get_response = execute


@_deprecated("client.chat_completion(model=…, messages=…)")
def create_chat(model: str) -> ChatBuilder:
    return ChatBuilder(model)


@_deprecated("client.chat_completion(model='cb:…', messages=…)")
def create_smart_chat(model: str) -> ChatBuilder:
    return ChatBuilder(model)


@_deprecated("client.chat_completion(model='cb:cost-optimal', …)")
def create_cost_optimized_chat() -> ChatBuilder:
    return ChatBuilder(COMMON_MODELS.SMART_CHEAP)


@_deprecated("client.chat_completion(model='cb:fastest', …)")
def create_fast_chat() -> ChatBuilder:
    return ChatBuilder(COMMON_MODELS.SMART_FAST)


@_deprecated("client.chat_completion(model='cb:smart-chat', …)")
def create_balanced_chat() -> ChatBuilder:
    return ChatBuilder(COMMON_MODELS.SMART_BALANCED)


@_deprecated("client.budgets.get('tenant') (or client.graphql.budget_status())")
def budget_status(
    client: Client, user_id: str | None = None, project_id: str | None = None
) -> BudgetStatus:
    """The legacy `budgetStatus(c)` (its GraphQL operation)."""
    return client.graphql.budget_status(user_id=user_id, project_id=project_id)


@_deprecated("client.budgets.set('tenant', limit_usd=…, period=…)")
def set_budget(
    client: Client, limit: float, period: str, warning_threshold: float = 0.8
) -> BudgetStatus:
    """The legacy `setBudget(c, limit, period)` (threshold 0.8, as it had)."""
    return client.graphql.set_budget(
        limit=limit, period=period, warning_threshold=warning_threshold
    )


@_deprecated("client.graphql.cost_analytics(start_date=…, end_date=…)")
def cost_analytics(client: Client, start_date: str, end_date: str) -> dict[str, Any]:
    return client.graphql.cost_analytics(start_date=start_date, end_date=end_date)


@_deprecated("client.budgets.get('agent:<id>')")
def get_project_budget_status(client: Client, project_id: str) -> BudgetStatus:
    return client.graphql.budget_status(project_id=project_id)
