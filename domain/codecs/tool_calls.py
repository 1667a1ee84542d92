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
