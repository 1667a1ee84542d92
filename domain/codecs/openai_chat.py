"""OpenAI chat completions: build the request body, parse the reply, map error statuses."""

from __future__ import annotations

from typing import Any

from domain import errors
from domain.codecs.http_errors import error_message, map_status
from domain.codecs.stream_lines import stream_object
from domain.config import ModelSpec, ProviderSpec
from domain.llm import HttpCall, LLMRequest, LLMResponse, StreamChunk, Usage
from domain.parameters import FilteredParameters, filter_parameters

PATH = "/chat/completions"


def build_call(
    request: LLMRequest,
    model: ModelSpec,
    wire_model: str,
    api_key: str | None,
    provider: ProviderSpec | None = None,
) -> tuple[HttpCall, FilteredParameters]:
    """The POST for this request, with only the parameters the model accepts."""
    params = filter_parameters(model, request.parameters)
    body: dict[str, Any] = {
        "model": wire_model,
        "messages": [_message(m.model_dump(exclude_none=True)) for m in request.messages],
    }
    body.update(params.wire)
    if request.tools:
        body["tools"] = request.tools
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return HttpCall(path=PATH, headers=headers, body=body), params


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """An assistant tool-call turn carries `""`, not null: OpenAI takes both, llama.cpp's
    server and others of the compatible family reject null."""
    if message.get("tool_calls") and "content" not in message:
        message["content"] = ""
    return message


def parse_response(body: dict[str, Any]) -> LLMResponse:
    """Read a chat.completion object; malformed replies raise ProviderError."""
    try:
        choice = body["choices"][0]
        message = choice["message"]
        usage = body.get("usage") or {}
        return LLMResponse(
            content=message.get("content") or "",
            tool_calls=message.get("tool_calls") or [],
            finish_reason=choice.get("finish_reason"),
            usage=_usage(usage),
            provider_model=body.get("model") or "",
            provider_response_id=body.get("id"),
        )
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise errors.ProviderError(f"provider sent a malformed completion: {exc!r}") from None


def _usage(usage: dict[str, Any]) -> Usage:
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(usage.get("total_tokens") or prompt + completion),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def parse_stream_line(line: str) -> StreamChunk | None:
    """Read one line of a chat.completion.chunk event stream.

    Returns a chunk (at `[DONE]` a fresh empty one marked `last`), or None for lines that
    carry nothing (blank lines, comments, other SSE fields). An in-band error raises ProviderError.
    """
    if not line.startswith("data:"):
        return None
    payload = line[5:].strip()
    if payload == "[DONE]":
        return StreamChunk(last=True)
    body = stream_object(payload)
    if "error" in body:
        raise errors.ProviderError(f"provider failed mid-stream: {error_message(body)}")
    usage = body.get("usage")
    chunk = StreamChunk(usage=_usage(usage) if usage else None)
    for choice in body.get("choices") or []:
        delta = choice.get("delta") or {}
        chunk.delta += delta.get("content") or ""
        chunk.tool_call_deltas.extend(delta.get("tool_calls") or [])
        chunk.finish_reason = choice.get("finish_reason") or chunk.finish_reason
    return chunk


def map_error(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """Translate an error status from the provider into the gateway's taxonomy."""
    return map_status(status, body, retry_after)
