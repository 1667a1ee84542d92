"""Tool calls and tool definitions between the unified (OpenAI) shape and other providers'."""

from __future__ import annotations

import json
from typing import Any


def arguments(fn: dict[str, Any]) -> dict[str, Any]:
    """A unified call's `function.arguments` (a JSON string, or already decoded) as a dict."""
    value = fn.get("arguments")
    if isinstance(value, str):
        try:
            value = json.loads(value or "{}")
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def unified_call(call_id: str, name: str, args: Any) -> dict[str, Any]:
    """A provider's tool call in the unified shape (arguments as a JSON string)."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(args or {})},
    }


def function_of(tool: dict[str, Any]) -> dict[str, Any]:
    """The function of a unified tool definition (`{"type": "function", "function": …}`)."""
    return tool.get("function", tool)


def assemble(deltas: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole unified calls from a stream's tool-call fragments, merged by `index`.

    OpenAI and Anthropic send the id and name once and the arguments as JSON text in
    pieces; Gemini and Ollama send whole calls (arguments as objects).
    """
    calls: dict[int, dict[str, Any]] = {}
    for delta in deltas:
        call = calls.setdefault(int(delta.get("index", 0)), {"id": "", "name": "", "args": ""})
        call["id"] = call["id"] or delta.get("id") or ""
        fn = delta.get("function") or {}
        call["name"] = call["name"] or fn.get("name") or ""
        fragment = fn.get("arguments")
        if isinstance(fragment, dict):
            call["args"] += json.dumps(fragment)
        elif fragment:
            call["args"] += fragment
    return [
        {
            "id": c["id"] or f"call_{i}",
            "type": "function",
            "function": {"name": c["name"], "arguments": c["args"] or "{}"},
        }
        for i, c in sorted(calls.items())
    ]
