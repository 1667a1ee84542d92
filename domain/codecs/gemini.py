"""Google Gemini (`generateContent`, `streamGenerateContent?alt=sse`): contents and parts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from domain import errors
from domain.codecs import tool_calls
from domain.codecs.http_errors import error_message, map_status
from domain.codecs.stream_lines import stream_object
from domain.config import ModelSpec, ProviderSpec
from domain.llm import ChatMessage, HttpCall, LLMRequest, LLMResponse, StreamChunk, Usage
from domain.parameters import FilteredParameters, filter_parameters

DEFAULT_API_VERSION = "v1"  # what the official google-genai SDK (3.x) calls
FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
}


def build_call(
    request: LLMRequest,
    model: ModelSpec,
    wire_model: str,
    api_key: str | None,
    provider: ProviderSpec | None = None,
) -> tuple[HttpCall, FilteredParameters]:
    """The POST: turns as `contents` (assistant is `model`), the system prompt as
    `systemInstruction`, parameters in `generationConfig`, tools as function declarations."""
    params = filter_parameters(model, request.parameters)
    config = dict(params.wire)
    if isinstance(config.get("stopSequences"), str):
        config["stopSequences"] = [config["stopSequences"]]
    system = "\n\n".join(m.content or "" for m in request.messages if m.role == "system")
    body: dict[str, Any] = {"contents": _contents(request.messages)}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if config:
        body["generationConfig"] = config
    if request.tools:
        declarations = [_declaration(t) for t in request.tools]
        body["tools"] = [{"functionDeclarations": declarations}]
    version = (provider.api_version if provider else None) or DEFAULT_API_VERSION
    method = "streamGenerateContent?alt=sse" if request.stream else "generateContent"
    path = f"/{version}/models/{quote(wire_model, safe='')}:{method}"
    headers = {"content-type": "application/json"}
    if api_key:
        headers["x-goog-api-key"] = api_key
    return HttpCall(path=path, headers=headers, body=body), params


def _contents(messages: list[ChatMessage]) -> list[dict[str, Any]]:
    names: dict[str, str] = {}  # tool call id -> function name, for functionResponse
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if m.role == "tool":
            name = names.get(m.tool_call_id or "", m.name or "tool")
            parts.append({"functionResponse": {"name": name, "response": _result(m.content)}})
        elif m.content:
            parts.append({"text": m.content})
        for call in m.tool_calls or []:
            fn = call.get("function") or {}
            names[call.get("id") or ""] = fn.get("name") or ""
            parts.append(
                {"functionCall": {"name": fn.get("name"), "args": tool_calls.arguments(fn)}}
            )
        role = "model" if m.role == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


def _result(content: str | None) -> dict[str, Any]:
    """A tool result as Gemini wants it: an object (JSON results kept, text wrapped)."""
    try:
        value = json.loads(content or "")
    except ValueError:
        value = None
    return value if isinstance(value, dict) else {"result": content or ""}


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    fn = tool_calls.function_of(tool)
    out = {"name": fn["name"], "description": fn.get("description", "")}
    if fn.get("parameters"):
        out["parameters"] = fn["parameters"]
    return out


def _usage(body: dict[str, Any]) -> Usage | None:
    meta = body.get("usageMetadata")
    if not meta:
        return None
    prompt = int(meta.get("promptTokenCount") or 0)
    completion = int(meta.get("candidatesTokenCount") or 0) + int(
        meta.get("thoughtsTokenCount") or 0
    )
    return Usage.of(prompt, completion, int(meta.get("cachedContentTokenCount") or 0))


def _read(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], str | None]:
    """Text, tool calls (unified shape) and finish reason of a response's first candidate."""
    candidates = body.get("candidates") or []
    if not candidates:
        return "", [], None
    first = candidates[0]
    text: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in (first.get("content") or {}).get("parts") or []:
        if "text" in part and not part.get("thought"):
            text.append(part["text"])
        elif "functionCall" in part:
            call = part["functionCall"]
            call_id = call.get("id") or f"call_{len(calls)}"
            calls.append(tool_calls.unified_call(call_id, call["name"], call.get("args")))
    reason = first.get("finishReason")
    finish = (
        "tool_calls"
        if calls and reason == "STOP"
        else FINISH.get(reason, reason and reason.lower())
    )
    return "".join(text), calls, finish


def parse_response(body: dict[str, Any]) -> LLMResponse:
    """Read a whole GenerateContentResponse."""
    try:
        text, calls, finish = _read(body)
        return LLMResponse(
            content=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=_usage(body) or Usage(),
            provider_model=body.get("modelVersion") or "",
            provider_response_id=body.get("responseId"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise errors.ProviderError(f"provider sent a malformed response: {exc!r}") from None


def parse_stream_line(line: str) -> StreamChunk | None:
    """Read one `data:` line of the SSE stream; the chunk with a finish reason is the last."""
    if not line.startswith("data:"):
        return None
    body = stream_object(line[5:].strip())
    if "error" in body:
        raise errors.ProviderError(f"provider failed mid-stream: {error_message(body)}")
    text, calls, finish = _read(body)
    return StreamChunk(
        delta=text,
        tool_call_deltas=[{"index": i, **c} for i, c in enumerate(calls)],
        finish_reason=finish,
        usage=_usage(body),
        last=finish is not None,
    )


def map_error(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """Google's `{"error": {"code", "message", "status"}}` onto the gateway's taxonomy."""
    return map_status(status, body, retry_after)
