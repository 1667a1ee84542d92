"""Anthropic Messages API: build the request body, parse the reply and its event stream."""

from __future__ import annotations

from typing import Any

from domain import errors
from domain.codecs import tool_calls
from domain.codecs.http_errors import error_kind, error_message, map_status
from domain.codecs.stream_lines import stream_object
from domain.config import ModelSpec, ProviderSpec
from domain.llm import ChatMessage, HttpCall, LLMRequest, LLMResponse, StreamChunk, Usage
from domain.parameters import FilteredParameters, filter_parameters

PATH = "/v1/messages"
API_VERSION = "2026-10-21"  # what the official SDK (2.12) sends
# equal to (never the same object as) the fresh chunk `parse_stream_line` returns at
# `message_stop`: chunks are mutable, so each stream gets its own
STREAM_DONE = StreamChunk(last=True)
# Anthropic's stop reasons in the unified (OpenAI) vocabulary
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def build_call(
    request: LLMRequest,
    model: ModelSpec,
    wire_model: str,
    api_key: str | None,
    provider: ProviderSpec | None = None,
) -> tuple[HttpCall, FilteredParameters]:
    """The POST for this request: `system` apart, `max_tokens` always set, tools translated."""
    params = filter_parameters(model, request.parameters)
    system = "\n\n".join(m.content or "" for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": wire_model,
        "max_tokens": model.max_output_tokens,
        "messages": _messages([m for m in request.messages if m.role != "system"]),
    }
    if system:
        body["system"] = system
    body.update(params.wire)
    if isinstance(body.get("stop_sequences"), str):
        body["stop_sequences"] = [body["stop_sequences"]]
    if request.tools:
        body["tools"] = [_tool(t) for t in request.tools]
    if request.stream:
        body["stream"] = True
    headers = {"content-type": "application/json", "anthropic-version": API_VERSION}
    if api_key:
        headers["authorization"] = f"Bearer {api_key}"  # as the official SDK sends it
    return HttpCall(path=PATH, headers=headers, body=body), params


def _messages(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    """User and assistant turns; tool results become user `tool_result` blocks, and
    consecutive turns of one role are merged (Anthropic wants them alternating)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = "assistant" if m.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        if m.role == "tool":
            blocks.append(
                {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content or ""}
            )
        elif m.content:
            blocks.append({"type": "text", "text": m.content})
        for call in m.tool_calls or []:
            fn = call.get("function") or {}
            blocks.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": fn.get("name"),
                    "input": tool_calls.arguments(fn),
                }
            )
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    for turn in out:  # a lone text block is sent the simple way
        if len(turn["content"]) == 1 and turn["content"][0]["type"] == "text":
            turn["content"] = turn["content"][0]["text"]
    return out


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shaped function tool as an Anthropic tool."""
    fn = tool_calls.function_of(tool)
    return {
        "name": fn["name"],
        "description": fn.get("description", ""),
        "input_schema": fn.get("parameters") or {"type": "object", "properties": {}},
    }


def _usage(usage: dict[str, Any]) -> Usage:
    """Input counts apart from cache reads and writes; all three are prompt tokens."""
    cached = int(usage.get("cache_read_input_tokens") or 0)
    prompt = (
        int(usage.get("input_tokens") or 0)
        + cached
        + int(usage.get("cache_creation_input_tokens") or 0)
    )
    completion = int(usage.get("output_tokens") or 0)
    return Usage.of(prompt, completion, cached)


def parse_response(body: dict[str, Any]) -> LLMResponse:
    """Read a `message` object; malformed replies raise ProviderError."""
    try:
        text: list[str] = []
        calls: list[dict[str, Any]] = []
        for block in body["content"]:
            if block["type"] == "text":
                text.append(block["text"])
            elif block["type"] == "tool_use":
                calls.append(tool_calls.unified_call(block["id"], block["name"], block["input"]))
        return LLMResponse(
            content="".join(text),
            tool_calls=calls,
            finish_reason=FINISH.get(body.get("stop_reason") or "", body.get("stop_reason")),
            usage=_usage(body.get("usage") or {}),
            provider_model=body.get("model") or "",
            provider_response_id=body.get("id"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.ProviderError(f"provider sent a malformed message: {exc!r}") from None


def parse_stream_line(line: str) -> StreamChunk | None:
    """Read one line of a Messages event stream (the `data:` lines carry the event type).

    Returns a chunk (at `message_stop` a fresh empty one marked `last`), or None for lines
    that carry nothing (`event:` lines, `ping`, block starts and stops without content).
    An `error` event after the 200 raises: overloaded is retryable, anything else is not.
    """
    if not line.startswith("data:"):
        return None
    event = stream_object(line[5:].strip(), "stream event")
    kind = event.get("type")
    if kind == "message_stop":
        return StreamChunk(last=True)
    if kind == "error":
        detail = f"provider failed mid-stream: {error_message(event)}"
        kind = error_kind(event)
        if kind == "overloaded_error":
            raise errors.ProviderOverloaded(detail)
        if kind == "api_error":
            raise errors.ProviderError(detail)
        raise errors.ProviderRejectedRequest(detail)
    if kind == "message_start":
        return StreamChunk(usage=_usage((event.get("message") or {}).get("usage") or {}))
    if kind == "message_delta":
        reason = (event.get("delta") or {}).get("stop_reason")
        return StreamChunk(
            finish_reason=FINISH.get(reason, reason) if reason else None,
            usage=_usage(event["usage"]) if event.get("usage") else None,
        )
    index = event.get("index", 0)
    if kind == "content_block_start":
        block = event.get("content_block") or {}
        if block.get("type") == "tool_use":
            call = {"id": block.get("id"), "type": "function"}
            call["function"] = {"name": block.get("name"), "arguments": ""}
            return StreamChunk(tool_call_deltas=[{"index": index, **call}])
        return StreamChunk(delta=block.get("text") or "") if block.get("text") else None
    if kind == "content_block_delta":
        delta = event.get("delta") or {}
        if delta.get("type") == "text_delta":
            return StreamChunk(delta=delta.get("text") or "")
        if delta.get("type") == "input_json_delta":
            fragment = {"arguments": delta.get("partial_json") or ""}
            return StreamChunk(tool_call_deltas=[{"index": index, "function": fragment}])
    return None


def map_error(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """Anthropic's statuses (529 overloaded included) onto the gateway's taxonomy."""
    return map_status(status, body, retry_after)
