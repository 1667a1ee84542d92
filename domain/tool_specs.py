"""Tools as the model sees them: a provider-safe name, a description and a JSON schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from domain.errors import UnknownTool

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_ITERATIONS = 8  # model turns in one execution's tool loop
TOOL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    source: str  # "builtin", or the MCP server's name

    def definition(self) -> dict[str, Any]:
        """The unified (OpenAI) tool definition every codec translates."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.input_schema or {"type": "object", "properties": {}},
            },
        }

    def as_api(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "source": self.source,
        }


def safe_tool_name(raw: str) -> str:
    """A name providers accept: other characters become `_`, at most 64 of them."""
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw)[:64] or "tool"


def narrowed(agent_tools: list[str], requested: list[str] | None) -> list[str]:
    """The tools of one execution: the request may narrow the agent's list, never widen it."""
    if requested is None:
        return list(agent_tools)
    extra = [name for name in requested if name not in agent_tools]
    if extra:
        raise UnknownTool(
            f"not tools of this agent: {', '.join(extra)} (a request may only narrow its list)",
            details={"unknown": extra},
        )
    return [name for name in agent_tools if name in set(requested)]
