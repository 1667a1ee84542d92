"""A tenant's MCP servers: one long-lived session each, inside the tenant's actor.

Each session runs in its own task (the SDK's transports must be entered and left by the same
task) and is reused by every execution; a session that failed is reopened on the next use, and
all are closed when the actor is evicted. A stdio server is the tenant's own child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from actors import tracing
from domain.errors import PermissionDenied
from domain.tool_specs import ToolSpec, safe_tool_name
from domain.urls import shown_url

CONNECT_TIMEOUT_S = 20.0
DEFAULT_STDIO_COMMANDS = "npx,node,uvx,python3"
if TYPE_CHECKING:  # the SDK is imported on first use: it costs a new actor ~0.6 s
    from mcp import Client

log = logging.getLogger(__name__)


def check_stdio_command(command: str) -> None:
    """A tenant's stdio server runs on the platform's hosts: only allowed programs start.

    `CB_MCP_STDIO_COMMANDS` lists them (comma-separated; `*` allows any).
    """
    raw = os.environ.get("CB_MCP_STDIO_COMMANDS", DEFAULT_STDIO_COMMANDS)
    allowed = {a.strip() for a in raw.split(",") if a.strip()}
    if "*" not in allowed and command not in allowed:  # a path must be listed as that path
        shown = ", ".join(sorted(allowed)) or "none: stdio servers are off"
        raise PermissionDenied(f"stdio command {command!r} is not allowed here (allowed: {shown})")


class McpConnection:
    """One registered server: its session, its tools as the model sees them, its health."""

    def __init__(self, server: dict[str, Any], secrets: dict[str, dict[str, str]]) -> None:
        self.server = server
        self.secrets = secrets  # {"env": {...}, "headers": {...}}, clear text, memory only
        self.tools: list[ToolSpec] = []
        self.remote: dict[str, str] = {}  # the name the model sees → the server's own name
        self.status = "idle"
        self.last_error: str | None = None
        self.checked_at: float | None = None
        self.stale = False
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def name(self) -> str:
        return str(self.server["name"])

    def as_api(self) -> dict[str, Any]:
        """What `GET /api/v1/mcp/servers` shows: never an environment value or a header."""
        server = self.server
        return {
            "id": server["id"],
            "name": server["name"],
            "transport": server["transport"],
            "command": server.get("command"),
            "args": server.get("args") or [],
            "url": shown_url(server["url"]) if server.get("url") else None,
            "env_keys": sorted(self.secrets.get("env", {})),
            "header_names": sorted(self.secrets.get("headers", {})),
            "health": {
                "status": self.status,
                "last_error": self.last_error,
                "checked_at": self.checked_at,
            },
            "tool_count": len(self.tools),
        }

    async def connect(self, taken: set[str]) -> Client:
        """The open session, opened (again) if needed; its tools listed on opening."""
        async with self._lock:
            if self._task is None or self._task.done() or self._client is None:
                self._ready.clear()
                self._stop.clear()
                self.status = "connecting"
                self._task = asyncio.get_running_loop().create_task(self._run())
                try:
                    await asyncio.wait_for(self._ready.wait(), CONNECT_TIMEOUT_S)
                except TimeoutError:
                    self._fail("did not answer within the connect timeout")
                    self._stop.set()
                if self._client is None:
                    raise ConnectionError(self.last_error or "could not connect")
                await self._list_tools(taken)
            elif self.stale:
                await self._list_tools(taken)
            return self._client

    async def live(self, taken: set[str]) -> Client:
        """The open session; one whose connection has closed (a stdio process that exited,
        an HTTP stream that ended) is opened again first, before any request is sent."""
        client = await self.connect(taken)
        if not _closed(client):
            return client
        log.info("MCP server %s: the connection had closed; reconnecting", self.name)
        await self.close()
        return await self.connect(taken)

    async def refresh(self, taken: set[str]) -> None:
        """List the server's tools again now."""
        self.stale = True
        await self.connect(taken)

    async def call(self, remote: str, arguments: dict[str, Any], timeout_s: float) -> Any:
        """Call a tool; the result as the model reads it. Raises on a failed call.

        The request carries the trace context in `params._meta.traceparent` (and, over
        HTTP, in a `traceparent` header: `_traceparent_header`)."""
        client = self._client
        if client is None:
            raise ConnectionError("the MCP session is not open")
        with tracing.mcp_request("tools/call", remote, self.name, self.server.get("url")) as span:
            traceparent = tracing.traceparent_for(span)
            meta = {"traceparent": traceparent} if traceparent else None
            try:
                result = await client.call_tool(
                    remote, arguments, read_timeout_seconds=timeout_s, meta=meta
                )
            except Exception as exc:
                self._fail(f"{type(exc).__name__}: {exc}")
                self._stop.set()  # reopen on the next use
                raise
            if result.is_error:
                tracing.failed(span, "tool_error")
        texts = [getattr(block, "text", None) for block in result.content]
        output: Any = result.structured_content
        if output is None:
            output = "\n".join(t for t in texts if t) or [b.model_dump() for b in result.content]
        if result.is_error:
            raise ToolReportedError(output)
        return output

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 5)
            except Exception:  # closing is best effort; the process ends with the actor
                self._task.cancel()
        self.status = "closed"

    async def _run(self) -> None:
        try:
            from mcp import Client

            async with Client(
                self._target(), read_timeout_seconds=60, message_handler=self._on_message
            ) as client:
                self._client = client
                self.status, self.last_error = "ready", None
                self.checked_at = time.time()
                self._ready.set()
                await self._stop.wait()
        except Exception as exc:
            self._fail(f"{type(exc).__name__}: {exc}")
        finally:
            self._client = None
            if self.status == "ready":
                self.status = "closed"
            self._ready.set()

    def _target(self) -> Any:
        import httpx2
        from mcp import StdioServerParameters
        from mcp.client.streamable_http import streamable_http_client

        server = self.server
        if server["transport"] == "stdio":
            env = {"PATH": os.environ.get("PATH", ""), **self.secrets.get("env", {})}
            return StdioServerParameters(
                command=server["command"], args=list(server.get("args") or []), env=env
            )
        http = httpx2.AsyncClient(
            headers=self.secrets.get("headers", {}),
            timeout=60,
            event_hooks={"request": [_traceparent_header]},
        )
        return streamable_http_client(server["url"], http_client=http)

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.stale = True

    async def _list_tools(self, taken: set[str]) -> None:
        assert self._client is not None
        listed = await self._client.list_tools(cache_mode="refresh")
        tools, remote = [], {}
        for tool in listed.tools:
            name = safe_tool_name(tool.name)
            if name in taken:  # another server or a built-in has it: qualify it
                name = safe_tool_name(f"{self.name}__{tool.name}")
            remote[name] = tool.name
            tools.append(
                ToolSpec(
                    name=name,
                    description=(tool.description or "")[:2000],
                    input_schema=dict(tool.input_schema or {}),
                    source=self.name,
                )
            )
        self.tools, self.remote, self.stale = tools, remote, False
        self.checked_at = time.time()

    def _fail(self, reason: str) -> None:
        self.status = "failed"
        self.last_error = reason[:500]
        self.checked_at = time.time()
        log.warning("MCP server %s: %s", self.name, self.last_error)


async def _traceparent_header(request: Any) -> None:
    """An MCP request over HTTP whose `params._meta` carries a `traceparent` sends it as a
    header too (the session's transport posts from its own task, so the header is read
    from the message itself)."""
    with contextlib.suppress(Exception):  # a body it cannot read goes as it is
        content = request.content
        if b'"traceparent"' in content:
            traceparent = json.loads(content)["params"]["_meta"]["traceparent"]
            if isinstance(traceparent, str):
                request.headers["traceparent"] = traceparent


def _closed(client: Client) -> bool:
    """Whether the session's connection has ended. mcp 2.x has no public flag (and ping is
    gone from the 2026-07-28 protocol), so this reads its dispatcher's; should that change,
    it answers False and a dead session is reopened after its first failed call instead."""
    dispatcher = getattr(getattr(client, "session", None), "_dispatcher", None)
    return getattr(dispatcher, "_closed", False) is True


class ToolReportedError(Exception):
    """The tool ran and reported an error (MCP `isError`)."""

    def __init__(self, output: Any) -> None:
        super().__init__(str(output)[:500])
        self.output = output
