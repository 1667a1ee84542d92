"""Google Gemini's generateContent API for the provider emulator: requests, whole replies,
SSE chunks and errors.

Checked against the official `google-genai` client in `tests/emulator_checks/test_emulator.py`.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from tests.emulator.rules import Ask, Plan

_encode = json.JSONEncoder(separators=(",", ":")).encode

STREAM_HEADERS: dict[str, str] = {}
ROUTE = re.compile(r"/(v1|v1beta)/models/([^/:]+):(generateContent|streamGenerateContent)")
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    return {
        "error": {
            "code": status,
            "message": message or f"Request failed ({STATUS.get(status, 'UNKNOWN')}).",
            "status": STATUS.get(status, "UNKNOWN"),
        }
    }


def texts(body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    out = []
    for content in body.get("contents") or []:
        for part in (content or {}).get("parts") or []:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    return out


def ask(body: dict[str, Any]) -> Ask:
    return Ask(texts=texts(body))


def validate(body: Any) -> dict[str, Any] | None:
    """Google's 400 for a request it would refuse, or None."""
    if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
        return error_body(400, "* GenerateContentRequest.contents: contents is not specified")
    for content in body["contents"]:
        if not isinstance(content, dict) or content.get("role") not in (None, "user", "model"):
            return error_body(400, "Please use a valid role: user, model.")
    unknown = set(body) - {
        "contents",
        "systemInstruction",
        "generationConfig",
        "tools",
        "toolConfig",
        "safetySettings",
        "cachedContent",
        "labels",
    }
    if unknown:
        name = sorted(unknown)[0]
        return error_body(400, f'Invalid JSON payload received. Unknown name "{name}"')
    return None


def _parts(content: str | None, tool_calls: list[dict[str, Any]] | None) -> list[dict]:
    parts: list[dict[str, Any]] = [{"text": content}] if content else []
    for call in tool_calls or ():
        args = json.loads(call["function"]["arguments"] or "{}")
        parts.append({"functionCall": {"name": call["function"]["name"], "args": args}})
    return parts


def response(
    model: str,
    parts: list[dict[str, Any]],
    finish: str | None,
    usage: tuple[int, int] | None,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = FINISH.get(finish, "STOP")
    body: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": model,
        "responseId": os.urandom(8).hex(),
    }
    if usage is not None:
        body["usageMetadata"] = {
            "promptTokenCount": usage[0],
            "candidatesTokenCount": usage[1],
            "totalTokenCount": usage[0] + usage[1],
        }
    return body


def whole(model: str, plan: Plan) -> dict[str, Any]:
    usage = (plan.prompt, plan.completion)
    return response(model, _parts(plan.content, plan.tool_calls), plan.finish, usage)


def stream(model: str, plan: Plan) -> tuple[bytes, list[bytes], bytes]:
    """(nothing, one SSE event per piece but the last, the last piece with tool calls, the
    finish reason and usage)."""

    def sse(body: dict[str, Any]) -> bytes:
        return b"data: " + _encode(body).encode() + b"\r\n\r\n"

    *early, final = plan.pieces or [""]
    deltas = [sse(response(model, [{"text": p}], None, None)) for p in early]
    last = response(
        model, _parts(final, plan.tool_calls), plan.finish, (plan.prompt, plan.completion)
    )
    return b"", deltas, sse(last)
