"""Anthropic's Messages wire format for the provider emulator: requests, whole replies,
server-sent events and errors.

Checked against the official `anthropic` SDK in `tests/emulator_checks/test_emulator.py`
and `test_emulator_anthropic.py`.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from tests.emulator.rules import Ask, Plan

_encode = json.JSONEncoder(separators=(",", ":")).encode

# status -> (error type, default message), as the Messages API answers
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    529: ("overloaded_error", "Overloaded"),
}
STREAM_HEADERS: dict[str, str] = {}
# the emulator's rules speak OpenAI's finish reasons; these are Anthropic's stop reasons
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind, default = ERRORS.get(status, ("api_error", "Upstream error."))
    return {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": "req_" + os.urandom(12).hex(),
    }


def texts(body: Any) -> list[str]:
    """The system prompt and every message's text (string content or text blocks)."""
    if not isinstance(body, dict):
        return []
    out = [body["system"]] if isinstance(body.get("system"), str) else []
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out.extend(
                b.get("text", "") if b.get("type") == "text" else str(b.get("content", ""))
                for b in content
                if isinstance(b, dict)
            )
    return out


def ask(body: dict[str, Any]) -> Ask:
    return Ask(texts=texts(body))


def validate(body: Any) -> dict[str, Any] | None:
    """Anthropic's 400 for a request it would refuse, or None."""
    if not isinstance(body, dict):
        return error_body(400, "Request body must be a JSON object.")
    for field in ("model", "max_tokens", "messages"):
        if field not in body:
            return error_body(400, f"{field}: Field required")
    if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
        return error_body(400, "max_tokens: Input should be a valid integer >= 1")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return error_body(400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return error_body(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i and messages[i - 1].get("role") == message["role"]:
            return error_body(400, "messages: roles must alternate between user and assistant")
    if messages[0]["role"] != "user":
        return error_body(400, "messages: first message must use the user role")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        return error_body(400, "temperature: range: 0..1")
    for unknown in ("frequency_penalty", "presence_penalty", "seed", "max_completion_tokens"):
        if unknown in body:
            return error_body(400, f"{unknown}: Extra inputs are not permitted")
    return None


def _blocks(content: str | None, tool_calls: list[dict[str, Any]] | None) -> list[dict]:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
    for call in tool_calls or ():
        blocks.append(
            {
                "type": "tool_use",
                "id": "toolu_" + os.urandom(12).hex(),
                "name": call["function"]["name"],
                "input": json.loads(call["function"]["arguments"] or "{}"),
            }
        )
    return blocks


def whole(model: str, plan: Plan) -> dict[str, Any]:
    """A whole `message` reply."""
    return {
        "id": "msg_" + os.urandom(12).hex(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": _blocks(plan.content, plan.tool_calls),
        "stop_reason": STOP_REASONS.get(plan.finish, plan.finish),
        "stop_sequence": None,
        "usage": {
            "input_tokens": plan.prompt,
            "output_tokens": plan.completion,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {_encode({'type': kind, **data})}\n\n".encode()


def stream(model: str, plan: Plan) -> tuple[bytes, list[bytes], bytes]:
    """(message_start + first block start + ping, deltas, block stops + message_delta + stop)."""
    pieces = plan.pieces
    whole_message = whole(model, replace(plan, content="", completion=1))
    start = {**whole_message, "content": [], "stop_reason": None}
    head = _event("message_start", {"message": start})
    deltas: list[bytes] = []
    index = 0
    if pieces:
        head += _event(
            "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
        )
        deltas = [
            _event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}})
            for p in pieces
        ]
        index = 1
    head += _event("ping", {})
    tail = b""
    if pieces:
        tail += _event("content_block_stop", {"index": 0})
    for block in whole_message["content"]:
        if block["type"] != "tool_use":
            continue
        opened = {**block, "input": {}}
        tail += _event("content_block_start", {"index": index, "content_block": opened})
        arguments = json.dumps(block["input"])
        for i in range(0, len(arguments), 8):
            delta = {"type": "input_json_delta", "partial_json": arguments[i : i + 8]}
            tail += _event("content_block_delta", {"index": index, "delta": delta})
        tail += _event("content_block_stop", {"index": index})
        index += 1
    stop = STOP_REASONS.get(plan.finish, plan.finish)
    tail += _event(
        "message_delta",
        {
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": plan.completion},
        },
    )
    tail += _event("message_stop", {})
    return head, deltas, tail


def error_event(status: int = 529) -> bytes:
    """An `error` event sent after the 200, as the API does when it is overloaded mid-stream."""
    body = error_body(status)
    return _event("error", {"error": body["error"]})
