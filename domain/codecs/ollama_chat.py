"""Ollama's native chat API (`/api/chat`): options object, newline-delimited JSON streams."""

from __future__ import annotations

from typing import Any

from domain import errors
from domain.codecs import tool_calls
from domain.codecs.http_errors import error_message, map_status
from domain.codecs.stream_lines import stream_object
from domain.config import ModelSpec, ProviderSpec
from domain.llm import ChatMessage, HttpCall, LLMRequest, LLMResponse, StreamChunk, Usage
from domain.parameters import FilteredParameters, filter_parameters

PATH = "/api/chat"


def build_call(
    request: LLMRequest,
    model: ModelSpec,
    wire_model: str,
    api_key: str | None,
    provider: ProviderSpec | None = None,
) -> tuple[HttpCall, FilteredParameters]:
    """The POST: parameters go in `options` (`max_tokens` as `num_predict`), `stream` explicit
    (Ollama streams unless told not to)."""
    params = filter_parameters(model, request.parameters)
    options = dict(params.wire)
    if isinstance(options.get("stop"), str):
        options["stop"] = [options["stop"]]
    body: dict[str, Any] = {
        "model": wire_model,
        "messages": [_message(m) for m in request.messages],
        "stream": request.stream,
    }
    if options:
        body["options"] = options
    if request.tools:
        body["tools"] = request.tools
    headers = {"content-type": "application/json"}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"
    return HttpCall(path=PATH, headers=headers, body=body), params


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role, "content": message.content or ""}
    if message.tool_calls:
        out["tool_calls"] = [
            {
                "function": {
                    "name": c["function"]["name"],
                    "arguments": tool_calls.arguments(c["function"]),
                }
            }
            for c in message.tool_calls
        ]
    if message.role == "tool" and message.name:
        out["tool_name"] = message.name
    return out


def _tool_calls(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Ollama's tool calls in the unified (OpenAI) shape, with ids Ollama does not give."""
    return [
        tool_calls.unified_call(f"call_{i}", c["function"]["name"], c["function"].get("arguments"))
        for i, c in enumerate(message.get("tool_calls") or [])
    ]


def _usage(body: dict[str, Any]) -> Usage:
    prompt = int(body.get("prompt_eval_count") or 0)
    completion = int(body.get("eval_count") or 0)
    return Usage.of(prompt, completion)


def _finish(body: dict[str, Any], calls: list[dict[str, Any]]) -> str | None:
    if calls:
        return "tool_calls"
    return body.get("done_reason")


def parse_response(body: dict[str, Any]) -> LLMResponse:
    """Read a whole (`"stream": false`) chat reply."""
    try:
        message = body["message"]
        calls = _tool_calls(message)
        return LLMResponse(
            content=message.get("content") or "",
            tool_calls=calls,
            finish_reason=_finish(body, calls),
            usage=_usage(body),
            provider_model=body.get("model") or "",
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.ProviderError(f"provider sent a malformed reply: {exc!r}") from None


def parse_stream_line(line: str) -> StreamChunk | None:
    """Read one NDJSON line; the `"done": true` line carries the counts and is the last."""
    if not line.strip():
        return None
    body = stream_object(line, "stream line")
    if "error" in body:
        raise errors.ProviderError(f"provider failed mid-stream: {error_message(body)}")
    message = body.get("message") or {}
    calls = _tool_calls(message)
    chunk = StreamChunk(
        delta=message.get("content") or "",
        tool_call_deltas=[{"index": i, **c} for i, c in enumerate(calls)],
    )
    if body.get("done"):
        chunk.usage = _usage(body)
        chunk.finish_reason = _finish(body, calls) or "stop"
        chunk.last = True
    return chunk


def map_error(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """Ollama answers `{"error": "…"}`; 404 is a model that was never pulled."""
    return map_status(status, body, retry_after)
