"""A minimal MCP server over stdio, standard library only, for the guide: one tool,
`word_count`. MCP over stdio is JSON-RPC 2.0, one message per line; a real server would use
the `mcp` SDK (FastMCP), which does the same with less code."""

from __future__ import annotations

import json
import sys
from typing import Any

TOOL = {
    "name": "word_count",
    "description": "Count the words of a text.",
    "inputSchema": {
        "type": "object",
        "properties": {"text": {"type": "string", "description": "The text to count"}},
        "required": ["text"],
    },
}


def answer(method: str, params: dict[str, Any]) -> dict[str, Any]:
    if method == "initialize":
        return {
            "protocolVersion": params.get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "word-count", "version": "1.0.0"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call" and params.get("name") == "word_count":
        words = len(str(params.get("arguments", {}).get("text", "")).split())
        return {"content": [{"type": "text", "text": json.dumps({"words": words})}]}
    if method == "ping":
        return {}
    raise LookupError(method)


for line in sys.stdin:
    message = json.loads(line)
    if "id" not in message:
        continue  # a notification (notifications/initialized, …): nothing to answer
    try:
        reply = {"result": answer(message["method"], message.get("params") or {})}
    except LookupError as unknown:
        reply = {"error": {"code": -32601, "message": f"unknown method {unknown}"}}
    print(json.dumps({"jsonrpc": "2.0", "id": message["id"], **reply}), flush=True)
