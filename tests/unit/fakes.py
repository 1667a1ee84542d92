"""Stand-ins for the actors a tenant's execution loop talks to, and a scripted provider.

The fakes have the actors' method names and answer `.method.remote(…)` with an awaitable
reply in the actors' one convention (`{"value": …}` or `{"error": …}`), so the code under
test runs unchanged. `ScriptedProvider` is an `httpx.MockTransport` handler that answers
OpenAI chat-completions requests with the replies it was given, in order.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import yaml

from actors.peers import Peers
from actors.settings import DEFAULT_CONFIG


class Method:
    """An actor method of a fake: `.remote(*args)` calls `fn` (which returns the reply)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn

    def remote(self, *args: Any) -> Any:
        return self.fn(*args)


class FakeConfigActor:
    """Hands out one configuration (the default file unless given)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data = data or yaml.safe_load(DEFAULT_CONFIG.read_text())
        self.version = "v1"
        self.asked = 0
        self.snapshot = Method(self._snapshot)

    async def _snapshot(self, known: str | None) -> dict[str, Any]:
        self.asked += 1
        value = None if known == self.version else {"version": self.version, "data": self.data}
        return {"value": value}


class FakeProviderActor:
    """Grants every permit; says its breaker is `breaker`; records settled outcomes."""

    def __init__(self, breaker: str = "closed", refuse: dict[str, Any] | None = None) -> None:
        self.breaker = breaker
        self.refuse = refuse
        self.settled: list[Any] = []
        self.views_asked = 0  # routing_view calls (a view on a lease call is not one)
        self.lease = Method(self._lease)
        self.settle = Method(self._settle)
        self.routing_view = Method(self._routing_view)

    async def _lease(
        self,
        want: int,
        timeout_s: float,
        returned: int = 0,
        outcomes: list[Any] | tuple[()] = (),
        incarnation: str | None = None,
        view: bool = False,
    ) -> dict[str, Any]:
        self.settled.extend(outcomes)
        if self.refuse:
            return {"error": self.refuse}
        grant: dict[str, Any] = {"credits": want, "roomy": True, "incarnation": "fake"}
        if view:
            grant["view"] = {"breaker": self.breaker, "models": {}}
        return {"value": grant}

    def _settle(self, returned: int, outcomes: list[Any], incarnation: str | None = None) -> None:
        self.settled.extend(outcomes)

    async def _routing_view(self) -> dict[str, Any]:
        self.views_asked += 1
        if self.breaker == "unreachable":
            raise RuntimeError("provider actor died")
        return {"value": {"breaker": self.breaker, "models": {}}}


class FakeProjectionActor:
    def __init__(self, running: list[dict[str, Any]] | None = None) -> None:
        self.running = running or []
        self.list_executions = Method(self._list_executions)

    async def _list_executions(self, tenant_id: str, filters: dict[str, Any]) -> dict[str, Any]:
        return {"value": self.running}


class Blocks(httpx.AsyncByteStream):
    """A streamed body that arrives as exactly these reads (cut anywhere: mid-line, between
    CR and LF, inside a UTF-8 character), with these response headers."""

    def __init__(self, blocks: list[bytes], headers: dict[str, str] | None = None) -> None:
        self.blocks = blocks
        self.headers = {"content-type": "text/event-stream", **(headers or {})}

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for block in self.blocks:
            yield block


class ScriptedProvider:
    """An OpenAI-compatible endpoint answering from a script: each entry is a status and
    body, or a callable taking the request JSON; the last entry repeats."""

    def __init__(self, *script: Any) -> None:
        self.script = list(script) or [completion("hello")]
        self.requests: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append({"url": str(request.url), "headers": request.headers, "json": body})
        entry = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if callable(entry):
            entry = entry(body)
        status, payload = entry
        if isinstance(payload, Blocks):  # a stream sent as these network reads
            return httpx.Response(status, stream=payload, headers=payload.headers)
        if isinstance(payload, bytes):  # a stream of server-sent events
            return httpx.Response(
                status, content=payload, headers={"content-type": "text/event-stream"}
            )
        return httpx.Response(status, json=payload)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def completion(
    content: str | None,
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    tool_calls: list[dict[str, Any]] | None = None,
    model: str = "gpt-4.1-mini",
) -> tuple[int, dict[str, Any]]:
    """A 200 chat-completions reply in OpenAI's wire format."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return 200, {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def streamed(
    pieces: list[str], prompt_tokens: int = 12, model: str = "gpt-4.1-mini"
) -> tuple[int, bytes]:
    """A 200 streamed chat completion in OpenAI's wire format: one chunk per piece, then the
    usage chunk and `[DONE]`."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choices = [{"index": 0, "delta": delta, "finish_reason": finish}] if delta else []
        body = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
                "model": model, "choices": choices, **extra}  # fmt: skip
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(pieces),
             "total_tokens": prompt_tokens + len(pieces)}  # fmt: skip
    parts = [chunk({"role": "assistant", "content": ""})]
    parts += [chunk({"content": piece}) for piece in pieces]
    parts += [chunk({"content": ""}, "stop"), chunk({}, usage=usage), b"data: [DONE]\n\n"]
    return 200, b"".join(parts)


def error(status: int, message: str = "boom") -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": "server_error", "code": None}}


class FakePeers:
    """One config actor, a provider actor per name, a projection actor, a scripted client."""

    def __init__(self, provider: ScriptedProvider | None = None) -> None:
        self.config_actor = FakeConfigActor()
        self.providers: dict[str, FakeProviderActor] = {}
        self.projection = FakeProjectionActor()
        self.http = provider or ScriptedProvider()
        self._client: httpx.AsyncClient | None = None

    def provider(self, name: str) -> FakeProviderActor:
        return self.providers.setdefault(name, FakeProviderActor())

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self.http.client()
        return self._client

    def peers(self) -> Peers:
        return Peers(
            config_actor=lambda: self.config_actor,
            provider=self.provider,
            projection=lambda: self.projection,
            http=self.client,
        )
