"""Ollama's native chat API for the provider emulator: requests, whole replies, NDJSON
stream lines and errors.

Checked against the official `ollama` client in `tests/emulator_checks/test_emulator.py`.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

from tests.emulator.rules import Ask, Plan

STREAM_HEADERS = {"Content-Type": "application/x-ndjson"}
_encode = json.JSONEncoder(separators=(",", ":")).encode


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    """Ollama errors are a bare string under `error`."""
    return {"error": message or ("model not found" if status == 404 else f"error {status}")}


def texts(body: Any) -> list[str]:
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    return [m.get("content") or "" for m in body["messages"] if isinstance(m, dict)]


def ask(body: dict[str, Any]) -> Ask:
    return Ask(texts=texts(body))


def validate(body: Any) -> dict[str, Any] | None:
    """Ollama's 400 for a request it would refuse, or None."""
    if not isinstance(body, dict) or not body.get("model"):
        return error_body(400, "model is required")
    if not isinstance(body.get("messages"), list):
        return error_body(400, "messages must be an array")
    options = body.get("options")
    if options is not None and not isinstance(options, dict):
        return error_body(400, "options must be an object")
    if "max_tokens" in body or "temperature" in body:  # OpenAI-style fields are not read here
        return error_body(400, "unknown top-level field; parameters go in options")
    return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())


def _calls(tool_calls: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "function": {
                "name": c["function"]["name"],
                "arguments": json.loads(c["function"]["arguments"] or "{}"),
            }
        }
        for c in tool_calls or ()
    ]


def _final(model: str, finish: str, prompt: int, completion: int) -> dict[str, Any]:
    return {
        "model": model,
        "created_at": _now(),
        "done": True,
        "done_reason": "length" if finish == "length" else "stop",
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 200_000,
        "eval_count": completion,
        "eval_duration": 700_000,
    }


def whole(model: str, plan: Plan) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": plan.content or ""}
    if plan.tool_calls:
        message["tool_calls"] = _calls(plan.tool_calls)
    return {**_final(model, plan.finish, plan.prompt, plan.completion), "message": message}


def stream(model: str, plan: Plan) -> tuple[bytes, list[bytes], bytes]:
    """(nothing, one line per piece, the line carrying tool calls and `done`)."""
    lines = [
        _encode(
            {
                "model": model,
                "created_at": _now(),
                "message": {"role": "assistant", "content": p},
                "done": False,
            }
        ).encode()
        + b"\n"
        for p in plan.pieces
    ]
    last = whole(model, replace(plan, content=""))
    return b"", lines, _encode(last).encode() + b"\n"
