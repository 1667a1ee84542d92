"""GraphQL types for MCP servers and tools (new; the legacy schema had none)."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.scalars import JSON


@strawberry.type
class McpServerHealthGQL:
    status: str
    last_error: str | None = None
    checked_at: float | None = None


@strawberry.type
class McpServerGQL:
    id: str
    name: str
    transport: str
    command: str | None
    args: list[str]
    url: str | None
    env_keys: list[str]
    header_names: list[str]
    health: McpServerHealthGQL
    tool_count: int


@strawberry.type
class ToolGQL:
    name: str
    description: str
    input_schema: JSON
    source: str


@strawberry.input
class KeyValueInput:
    key: str
    value: str


@strawberry.input
class McpServerInput:
    name: str
    transport: str
    command: str | None = None
    args: list[str] = strawberry.field(default_factory=list)
    env: list[KeyValueInput] = strawberry.field(default_factory=list)
    url: str | None = None
    headers: list[KeyValueInput] = strawberry.field(default_factory=list)
    bearer_token: str | None = None
    timeout_s: float = 30.0

    def body(self) -> dict[str, Any]:
        """The REST body this input stands for (validated by the same schema)."""
        return {
            "name": self.name,
            "transport": self.transport,
            "command": self.command,
            "args": self.args,
            "env": {pair.key: pair.value for pair in self.env},
            "url": self.url,
            "headers": {pair.key: pair.value for pair in self.headers},
            "bearer_token": self.bearer_token,
            "timeout_s": self.timeout_s,
        }


def server_to_gql(view: dict[str, Any]) -> McpServerGQL:
    return McpServerGQL(
        **{k: v for k, v in view.items() if k != "health"},
        health=McpServerHealthGQL(**view["health"]),
    )


def tool_to_gql(view: dict[str, Any]) -> ToolGQL:
    return ToolGQL(**{k: view[k] for k in ("name", "description", "input_schema", "source")})
