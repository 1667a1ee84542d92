"""The legacy GraphQL types old clients rely on (names and nullability exactly as before)."""

from __future__ import annotations

import asyncio
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql import agent_extensions, context
from api.graphql.deprecation import deprecated


async def _provider_type(root: AgentLLMProviderGQL, info: Info) -> str:
    """The type of the provider the agent's model resolves to for this tenant now (the type
    it was created with while it resolves to none)."""
    return (await resolved_provider_types(info)).get(root.model) or root.stated_type


@strawberry.type
class AgentLLMProviderGQL:
    provider_type: str = strawberry.field(resolver=_provider_type)
    model: str
    base_url: str | None = None
    stated_type: strawberry.Private[str] = "openai"


async def resolved_provider_types(info: Info) -> dict[str, str]:
    """Each model name the caller's tenant can send → the type of the provider it resolves
    to now; asked of the tenant's actor once per request."""
    pending = info.context.get(_RESOLVED)
    if pending is None:
        pending = asyncio.ensure_future(_provider_types(info))
        info.context[_RESOLVED] = pending
    return await pending


async def _provider_types(info: Info) -> dict[str, str]:
    caller = context.who(info)
    listing = await context.tenant(info, caller).models_view()
    providers = context.runtime(info).config().providers
    return {
        m["id"]: providers[m["provider"]].type
        for m in listing["models"]
        if m.get("provider") in providers
    }


_RESOLVED = "cb_resolved_provider_types"


@strawberry.type
class LlmConfigGQL:
    temperature: float
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop_sequences: list[str] = strawberry.field(default_factory=list)


@strawberry.type
class AgentPromptsGQL:
    system: str
    user_template: str
    context_instructions: str | None = None


@strawberry.type
class AgentDefinitionGQL:
    id: str
    name: str
    description: str
    llm_provider: AgentLLMProviderGQL = strawberry.field(
        deprecation_reason=deprecated("AgentDefinitionGQL.llmProvider")
    )
    llm_config: LlmConfigGQL
    prompts: AgentPromptsGQL
    capabilities: list[str]
    tools: list[str]
    created_at: str
    updated_at: str
    # the multi-tenant fields (PED §12.1), resolved only when asked for
    tenant_id = agent_extensions.tenant_id
    tenant_permissions = agent_extensions.tenant_permissions
    execution_endpoints = agent_extensions.execution_endpoints
    streaming_config = agent_extensions.streaming_config_field
    virtual_model_mappings = agent_extensions.virtual_model_mappings
    tool_configurations = agent_extensions.tool_configurations_field
    performance_metrics = agent_extensions.performance_metrics
    execution_history = agent_extensions.execution_history


@strawberry.input
class AgentLLMProviderInput:
    provider_type: str
    model: str
    api_key: str
    base_url: str | None = None


@strawberry.input
class LlmConfigInput:
    temperature: float
    stop_sequences: list[str]
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None


@strawberry.input
class AgentPromptsInput:
    system: str
    user_template: str
    context_instructions: str | None = None


@strawberry.input
class AgentDefinitionInput:
    name: str
    description: str
    llm_provider: AgentLLMProviderInput
    llm_config: LlmConfigInput
    prompts: AgentPromptsInput
    capabilities: list[str]
    tools: list[str]


def definition_from_input(data: AgentDefinitionInput) -> dict[str, Any]:
    """The REST agent definition a legacy input stands for (the api key is kept apart)."""
    cfg = data.llm_config
    parameters = {
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
        "top_p": cfg.top_p,
        "frequency_penalty": cfg.frequency_penalty,
        "presence_penalty": cfg.presence_penalty,
        "stop": list(cfg.stop_sequences) or None,
    }
    return {
        "name": data.name,
        "description": data.description,
        "model": data.llm_provider.model,
        "provider_type": data.llm_provider.provider_type,
        "base_url": data.llm_provider.base_url,
        "system_prompt": data.prompts.system,
        "user_template": data.prompts.user_template,
        "context_instructions": data.prompts.context_instructions,
        "parameters": {k: v for k, v in parameters.items() if v is not None},
        "tools": list(data.tools),
        "capabilities": list(data.capabilities),
        "tags": [],
    }


def agent_to_gql(view: dict[str, Any]) -> AgentDefinitionGQL:
    params = view.get("parameters") or {}
    return AgentDefinitionGQL(
        id=view["id"],
        name=view["name"],
        description=view.get("description") or "",
        llm_provider=AgentLLMProviderGQL(
            stated_type=view.get("provider_type") or "openai",
            model=view["model"],
            base_url=view.get("base_url"),
        ),
        llm_config=LlmConfigGQL(
            temperature=params.get("temperature", 0.7),
            max_tokens=params.get("max_tokens"),
            top_p=params.get("top_p"),
            frequency_penalty=params.get("frequency_penalty"),
            presence_penalty=params.get("presence_penalty"),
            stop_sequences=params.get("stop") or [],
        ),
        prompts=AgentPromptsGQL(
            system=view.get("system_prompt") or "",
            user_template=view.get("user_template") or "",
            context_instructions=view.get("context_instructions"),
        ),
        capabilities=view.get("capabilities") or [],
        tools=view.get("tools") or [],
        created_at=view["created_at"],
        updated_at=view["updated_at"],
    )


@strawberry.type
class LlmModelGQL:
    id: str
    name: str
    max_tokens: int
    context_window: int
    cost_per_input_token: float
    cost_per_output_token: float
    supports_streaming: bool
    supports_function_calling: bool
    capabilities: list[str]


@strawberry.type
class LlmProviderHealthGQL:
    is_healthy: bool
    last_check: str
    error_rate: float
    average_latency_ms: int
    consecutive_failures: int
    last_error: str | None = None


@strawberry.type
class LlmProviderGQL:
    id: strawberry.ID
    provider_type: str
    name: str
    base_url: str
    models: list[LlmModelGQL]
    health_status: LlmProviderHealthGQL
    created_at: str
    updated_at: str


def provider_to_gql(view: dict[str, Any], configured_at: str) -> LlmProviderGQL:
    """A provider view (`api.provider_views`) in the legacy shape; its `last_check` must be
    known (`api.graphql.providers` checks a provider that was never checked)."""
    health = view["health"]
    return LlmProviderGQL(
        id=strawberry.ID(view["id"]),
        provider_type=view["type"],
        name=view["id"],
        base_url=view["base_url"],
        models=[
            LlmModelGQL(
                id=m["id"],
                name=m["provider_model"],
                max_tokens=m["max_output_tokens"],
                context_window=m["context_window"],
                cost_per_input_token=m["input_price_per_mtok"] / 1e6,
                cost_per_output_token=m["output_price_per_mtok"] / 1e6,
                supports_streaming="streaming" in m["capabilities"],
                supports_function_calling="tools" in m["capabilities"],
                capabilities=m["capabilities"],
            )
            for m in view["models"]
        ],
        health_status=LlmProviderHealthGQL(
            is_healthy=health["healthy"],
            last_check=health["last_check"] or "",
            error_rate=health["error_rate"],
            average_latency_ms=round(health["average_latency_ms"]),
            consecutive_failures=health["consecutive_failures"],
            last_error=health["last_error"],
        ),
        created_at=configured_at,
        updated_at=configured_at,
    )
