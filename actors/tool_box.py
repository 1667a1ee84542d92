"""The tools a tenant's executions can use: built-ins and its MCP servers' tools.

Owned by the tenant's actor. A call never raises: a tool that fails, times out or does not
exist gives a structured error the model can read, and the execution goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from actors import tracing
from actors.mcp_sessions import McpConnection, ToolReportedError
from domain.codecs.tool_calls import arguments as call_arguments
from domain.errors import UnknownTool
from domain.tool_specs import TOOL_TIMEOUT_S, ToolSpec
from domain.tools import BUILTIN_TOOLS, ToolInputError

RECONNECT_AFTER_S = 10.0  # a failed server is tried again on use after this long


@dataclass
class ToolOutcome:
    call_id: str
    name: str
    arguments: dict[str, Any]
    result: Any = None
    error: dict[str, str] | None = None
    duration_ms: float = 0.0

    def content(self) -> str:
        """The tool message the model reads."""
        body = {"error": self.error} if self.error else {"result": self.result}
        return json.dumps(body, default=str)

    def as_api(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            "result": self.result,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


BUILTIN_SPECS = {
    name: ToolSpec(name, tool.description, tool.input_schema, "builtin")
    for name, tool in BUILTIN_TOOLS.items()
}


class ToolBox:
    def __init__(self) -> None:
        self.servers: dict[str, McpConnection] = {}

    def specs(self) -> dict[str, ToolSpec]:
        """Every tool the tenant can name now: built-ins first, then each server's."""
        out = dict(BUILTIN_SPECS)
        for server in self.servers.values():
            for spec in server.tools:
                out.setdefault(spec.name, spec)
        return out

    def taken_by_others(self, server: McpConnection) -> set[str]:
        names = set(BUILTIN_SPECS)
        for other in self.servers.values():
            if other is not server:
                names.update(spec.name for spec in other.tools)
        return names

    async def open(self, server: McpConnection) -> None:
        """Connect a server (again) and list its tools; failures show in its health."""
        try:
            await server.connect(self.taken_by_others(server))
        except Exception:  # recorded in server.status / last_error
            pass

    async def resolve(self, names: list[str]) -> list[ToolSpec]:
        """The specs of `names`, opening servers that are not connected; unknown → 400."""
        known = self.specs()
        if any(n not in known for n in names):
            await self.reopen_failed()
            known = self.specs()
        missing = [n for n in names if n not in known]
        if missing:
            raise UnknownTool(
                f"unknown tool(s): {', '.join(missing)}; GET /api/v1/tools lists the tools",
                details={"unknown": missing},
            )
        for server in {self._server_of(known[n]) for n in names} - {None}:
            if server is not None and server.status != "ready":
                await self.open(server)
        return [known[n] for n in names]

    async def run(self, call: dict[str, Any], allowed: dict[str, ToolSpec]) -> ToolOutcome:
        """Run one tool call of the model; errors become the outcome's `error`."""
        fn = call.get("function") or {}
        outcome = ToolOutcome(call.get("id") or "", fn.get("name") or "", call_arguments(fn))
        started = time.perf_counter()
        spec = allowed.get(outcome.name)
        with tracing.tool_call(outcome.name, outcome.call_id, spec and spec.source) as span:
            try:
                if spec is None:
                    outcome.error = _error("unknown_tool", f"no tool named {outcome.name!r} here")
                elif spec.source == "builtin":
                    outcome.result = BUILTIN_TOOLS[spec.name].run(outcome.arguments)
                else:
                    server = self._server_of(spec)
                    if server is None:
                        raise ConnectionError(f"MCP server {spec.source!r} is gone")
                    await server.live(self.taken_by_others(server))
                    limit = float(server.server.get("timeout_s") or TOOL_TIMEOUT_S)
                    outcome.result = await asyncio.wait_for(
                        server.call(server.remote[spec.name], outcome.arguments, limit), limit
                    )
            except ToolInputError as exc:
                outcome.error = _error("invalid_arguments", str(exc))
            except TimeoutError:
                outcome.error = _error("tool_timeout", "the tool did not answer in time")
            except ToolReportedError as exc:
                outcome.error = _error("tool_error", str(exc))
            except Exception as exc:  # any failure is the model's to read, never a crash
                outcome.error = _error("tool_error", f"{type(exc).__name__}: {exc}"[:500])
            if outcome.error is not None:
                tracing.failed(span, outcome.error["type"])
        outcome.duration_ms = round((time.perf_counter() - started) * 1000, 3)
        return outcome

    def _server_of(self, spec: ToolSpec) -> McpConnection | None:
        if spec.source == "builtin":
            return None
        return next((s for s in self.servers.values() if s.name == spec.source), None)

    async def reopen_failed(self) -> None:
        """Try again the servers that failed (each at most every `RECONNECT_AFTER_S`)."""
        now = time.time()
        waiting = [
            s
            for s in self.servers.values()
            if s.status != "ready"
            and (s.checked_at is None or now - s.checked_at > RECONNECT_AFTER_S)
        ]
        await asyncio.gather(*(self.open(s) for s in waiting))

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.servers.values()), return_exceptions=True)


def _error(kind: str, message: str) -> dict[str, str]:
    return {"type": kind, "message": message}


def replayed(call: dict[str, Any], recorded: list[dict[str, Any]]) -> ToolOutcome:
    """A replay's tool call answered from the recorded run (`Execution.tool_log`): the first
    unused call of that tool with the same arguments, else of that tool; else a
    `not_recorded` error. The answer used is taken out of `recorded`."""
    fn = call.get("function") or {}
    outcome = ToolOutcome(call.get("id") or "", fn.get("name") or "", call_arguments(fn))
    same = [c for c in recorded if c["name"] == outcome.name]
    match = next((c for c in same if c["arguments"] == outcome.arguments), None) or next(
        iter(same), None
    )
    if match is None:
        outcome.error = _error(
            "not_recorded", f"the recorded run has no (further) call of {outcome.name!r}"
        )
        return outcome
    recorded.remove(match)
    outcome.result, outcome.error = match.get("result"), match.get("error")
    return outcome
