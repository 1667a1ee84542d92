"""An MCP server over streamable HTTP for tests: the SDK's own server (`MCPServer`) with one
tool, `add(a, b)`, served by uvicorn on 127.0.0.1 in a thread, recording every POST it gets
(headers and JSON-RPC body) so a test can see what the gateway sent.

    with RecordingMcpServer() as mcp:        # mcp.url is the server's endpoint
        ...
        [call] = mcp.posts_of("tools/call")
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordedPost:
    headers: dict[str, str]
    body: Any

    @property
    def method(self) -> str | None:
        return self.body.get("method") if isinstance(self.body, dict) else None


class RecordingMcpServer:
    def __init__(self) -> None:
        self.posts: list[RecordedPost] = []
        self._lock = threading.Lock()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def posts_of(self, method: str) -> list[RecordedPost]:
        with self._lock:
            return [p for p in self.posts if p.method == method]

    def start(self) -> RecordingMcpServer:
        import uvicorn
        from mcp.server.mcpserver import MCPServer

        server = MCPServer("traced")

        @server.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            return a + b

        app = server.streamable_http_app(json_response=True)
        config = uvicorn.Config(
            self._recording(app), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="mcp-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            assert time.monotonic() < deadline and self._thread.is_alive(), "no MCP server"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> RecordingMcpServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _recording(self, app: Any) -> Any:
        """`app`, noting each POST's headers and body as it is read."""

        async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or scope["method"] != "POST":
                await app(scope, receive, send)
                return
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            chunks: list[bytes] = []

            async def receiving() -> dict[str, Any]:
                message = await receive()
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):
                    try:
                        body = json.loads(b"".join(chunks) or b"null")
                    except ValueError:
                        body = None
                    with self._lock:
                        self.posts.append(RecordedPost(headers, body))
                return message

            await app(scope, receiving, send)

        return recording
