"""The legacy LLM types (`llmChatCompletion`, `configureLlmProvider`) and their mappings to
and from the OpenAI door's request and the execution result document."""

from __future__ import annotations

from typing import Any

import strawberry
from pydantic import ValidationError

from domain.chat_completions import ChatCompletionRequest
from domain.errors import InvalidRequest

PROJECT_TAG = "project_id"  # the request metadata key that keeps the legacy projectId


@strawberry.input
class ChatMessageInput:
    role: str
    content: str
    name: str | None = None


@strawberry.input
class LlmChatCompletionInput:
    model: str
    messages: list[ChatMessageInput]
    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    stop: list[str] | None = None
    stream: bool | None = None
    user: str | None = None
    project_id: str | None = None


@strawberry.input(
    name="LlmchatCompletionInput",
    description="The legacy TypeScript SDK's spelling of LlmChatCompletionInput (same fields); "
    "a variable of this type is accepted where LlmChatCompletionInput is expected.",
)
class LlmchatCompletionInput(LlmChatCompletionInput):
    pass


@strawberry.type
class ChatMessageGQL:
    role: str
    content: str
    name: str | None = None


@strawberry.type
class LlmChoiceGQL:
    index: int
    message: ChatMessageGQL
    finish_reason: str | None = None


@strawberry.type
class TokenUsageGQL:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    estimated_cost: float


@strawberry.type
class RoutingInfoGQL:
    selected_provider: str
    routing_strategy: str
    latency_ms: int
    retry_count: int
    fallback_used: bool


@strawberry.type
class LlmResponseGQL:
    id: str
    model: str
    choices: list[LlmChoiceGQL]
    usage: TokenUsageGQL
    provider: str
    routing_info: RoutingInfoGQL


@strawberry.input
class LlmModelInput:
    id: str
    name: str
    max_tokens: int
    context_window: int
    cost_per_input_token: float
    cost_per_output_token: float
    supports_streaming: bool
    supports_function_calling: bool
    capabilities: list[str]


@strawberry.input
class LlmProviderConfigInput:
    provider_type: str
    name: str
    base_url: str
    api_key_id: str
    models: list[LlmModelInput]


def chat_request(data: LlmChatCompletionInput) -> ChatCompletionRequest:
    """The OpenAI door's request a legacy completion input stands for: `user` kept, the
    `projectId` as the `project_id` tag of the request metadata. `stream` is the caller's
    business (see `llm.py`). A bad value is an InvalidRequest naming the field."""
    metadata = {PROJECT_TAG: data.project_id} if data.project_id else None
    body: dict[str, Any] = {
        "model": data.model,
        "messages": [
            {"role": m.role, "content": m.content, **({"name": m.name} if m.name else {})}
            for m in data.messages
        ],
        "temperature": data.temperature,
        "max_tokens": data.max_tokens,
        "top_p": data.top_p,
        "frequency_penalty": data.frequency_penalty,
        "presence_penalty": data.presence_penalty,
        "stop": data.stop,
        "user": data.user,
        "metadata": metadata,
    }
    try:
        given = {k: v for k, v in body.items() if v is not None}
        return ChatCompletionRequest.model_validate(given)
    except ValidationError as exc:
        problems = [{"field": _field(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        text = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidRequest(f"invalid input: {text}", details={"problems": problems}) from None


def _field(loc: tuple[Any, ...]) -> str:
    """A pydantic location in the legacy input's camelCase names (`messages.0.role`)."""
    names = {"max_tokens": "maxTokens", "top_p": "topP", "frequency_penalty": "frequencyPenalty",
             "presence_penalty": "presencePenalty", "metadata": "projectId"}  # fmt: skip
    return ".".join(names.get(str(p), str(p)) for p in loc)


def response_of(result: dict[str, Any]) -> LlmResponseGQL:
    """A completed execution's result document (`domain.results.result_document`) in the legacy
    shape: its id is the execution id, the routing facts are the real decision and attempts."""
    answer = result.get("response") or {}
    usage = result.get("usage") or {}
    meta = result.get("metadata") or {}
    provider = meta.get("provider") or ""
    routing = meta.get("routing") or {}
    attempts = meta.get("attempts") or 0
    return LlmResponseGQL(
        id=result["execution_id"],
        model=meta.get("model_resolved") or meta.get("model_requested") or "",
        choices=[
            LlmChoiceGQL(
                index=0,
                message=ChatMessageGQL(role="assistant", content=answer.get("content") or ""),
                finish_reason=answer.get("finish_reason") or "stop",
            )
        ],
        usage=TokenUsageGQL(
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            total_tokens=usage.get("total_tokens", 0),
            estimated_cost=usage.get("cost_usd", 0.0),
        ),
        provider=provider,
        routing_info=RoutingInfoGQL(
            selected_provider=provider,
            routing_strategy=routing.get("strategy") or "direct",
            latency_ms=round(meta.get("duration_ms") or 0),
            retry_count=max(0, attempts - 1),
            fallback_used=bool(meta.get("fallback_used")),
        ),
    )
