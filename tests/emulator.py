"""In-process emulator of the OpenAI chat-completions and Anthropic Messages HTTP APIs.

The server speaks the real wire formats (JSON bodies, ``chat.completion.chunk`` and
Messages server-sent events, each provider's error objects) so that the official ``openai``
and ``anthropic`` SDKs and the gateway's own upstream client can talk to it unchanged.
Anthropic's API is at ``/v1/messages`` (its SDK's base URL is the emulator's root), Azure
OpenAI's at ``/openai/deployments/{deployment}/chat/completions?api-version=…`` and
Ollama's native ``/api/chat`` (newline-delimited JSON streams) and Gemini's
``/v1[beta]/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``.

In tests::

    emu = ProviderEmulator().start()
    emu.script("boom", status=500)            # any request mentioning "boom" gets a 500
    ...                                       # point a client at emu.base_url
    emu.stop()

Standalone (benchmarks)::

    python -m tests.emulator --port 9100 [--record]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests import emulator_anthropic as anthropic
from tests import emulator_gemini as gemini
from tests import emulator_ollama as ollama

__all__ = ["ProviderEmulator", "RecordedRequest", "main"]

# ASCII-escaped output is ~40% faster to produce than ensure_ascii=False and parses the same.
_encode = json.JSONEncoder(separators=(",", ":")).encode

MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "text-embedding-3-small",
)
_MODEL_CREATED = 1_715_367_049
_FINGERPRINT = "fp_e1a7c0de42"
_PIECE_CHARS = 4
_ECHO_LIMIT = 200

# status -> (error type, error code, message) used when a scripted error has no body.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "authentication_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "The request conflicts with another request."),
    422: ("invalid_request_error", None, "The request could not be processed."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "The server timed out while processing your request."),
}
_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)
_AZURE_CHAT = re.compile(r"/openai/deployments/([^/]+)/chat/completions")
_AZURE_NO_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource."
)
_NO_API_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


def error_body(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Build OpenAI's error object for ``status``; unset fields get the status's defaults."""
    default_type, default_code, default_message = _ERRORS.get(
        status,
        ("server_error", None, "Upstream error.")
        if status >= 500
        else ("invalid_request_error", None, "Invalid request."),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def message_text(message: Any) -> str:
    """Text of one chat message: string content, or its ``text`` parts joined by spaces."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""


def _body_texts(body: Any) -> list[str]:
    """Texts of all messages of a request body (empty when it has none)."""
    if isinstance(body, dict) and isinstance(body.get("contents"), list):
        return gemini.texts(body)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    return [message_text(m) for m in body["messages"]]


def split_pieces(text: str, size: int = _PIECE_CHARS) -> list[str]:
    """Split ``text`` into consecutive pieces of ``size`` characters (last may be shorter)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _hex_id(nbytes: int = 12) -> str:
    return os.urandom(nbytes).hex()


@dataclass
class RecordedRequest:
    """One request the emulator received, updated while its response is written."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    completed: bool = False
    client_disconnected: bool = False
    status: int | None = None

    @property
    def texts(self) -> list[str]:
        """Texts of the request's messages."""
        return _body_texts(self.body)


@dataclass
class _Rule:
    match: str
    content: str | None
    chunks: list[str] | None
    prompt_tokens: int | None
    completion_tokens: int | None
    status: int
    error_body: dict[str, Any] | None
    headers: dict[str, str] | None
    delay: float
    chunk_delay: float
    fail_after_chunks: int | None
    remaining: int | None
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = field(default=None)
    stream_usage: bool = True
    model: str | None = None
    with_tool_results: bool = False


@dataclass
class _Plan:
    """A successful reply as the rules decided it, before any provider's format."""

    content: str | None
    tool_calls: list[dict[str, Any]] | None
    finish: str
    prompt: int
    completion: int
    pieces: list[str]
    headers: dict[str, str] | None
    chunk_delay: float
    fail_after: int | None


def _normalize_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """Bring a scripted tool call into OpenAI's shape; ``id`` may stay None (filled per reply)."""
    fn = call.get("function")
    if not isinstance(fn, dict):
        fn = {"name": call.get("name"), "arguments": call.get("arguments", "")}
    arguments = fn.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": fn.get("name"), "arguments": arguments},
    }


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ProviderEmulator:
    """OpenAI-compatible HTTP server with scriptable replies, running on its own event loop."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record: bool = True) -> None:
        self.host = host
        self._port = port
        self._record = record
        self.requests: list[RecordedRequest] = []
        self._rules: list[_Rule] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None
        self._stopping = False
        self._models_body = _encode(
            {
                "object": "list",
                "data": [self._model_object(m) for m in MODELS],
            }
        ).encode()

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """TCP port the server listens on (the real one once started)."""
        return self._port

    @property
    def base_url(self) -> str:
        """OpenAI base URL of this server, e.g. ``http://127.0.0.1:9100/v1``."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return f"http://{host}:{self._port}/v1"

    def start(self) -> ProviderEmulator:
        """Serve on a fresh event loop in a daemon thread; return once listening."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        self._stopping = False
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:  # report to start() instead of dying silently
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                self._close_loop(loop)

        self._thread = threading.Thread(target=run, name="provider-emulator", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("emulator did not start within 10 s")
        if failure:
            self._thread = None
            self._loop = None
            raise failure[0]
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and end the server thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._stopping = True
        if self._runner is not None:
            future = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop)
            try:
                future.result(timeout=5)
            except Exception:  # shutting down regardless
                pass
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        self._thread = None
        self._loop = None
        self._runner = None

    def serve_forever(self) -> None:
        """Serve on the current thread until SIGINT/SIGTERM (standalone mode)."""
        loop = _new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        loop.run_until_complete(self._start_server())
        print(f"listening on {self.base_url}", flush=True)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, loop.stop)
        try:
            loop.run_forever()
        finally:
            self._stopping = True
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            self._close_loop(loop)

    def __enter__(self) -> ProviderEmulator:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start_server(self) -> None:
        server = web.Server(self._handle, handler_cancellation=True, access_log=None)
        runner = web.ServerRunner(server, shutdown_timeout=0.25)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self._port, backlog=4096)
        await site.start()
        self._runner = runner
        self._port = runner.addresses[0][1]

    @staticmethod
    def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.close()

    # ------------------------------------------------------------------ scripting

    def script(
        self,
        match: str,
        *,
        content: str | None = None,
        chunks: list[str] | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        status: int = 200,
        error_body: dict | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        chunk_delay: float = 0.0,
        fail_after_chunks: int | None = None,
        times: int | None = None,
        finish_reason: str = "stop",
        tool_calls: list[dict] | None = None,
        stream_usage: bool = True,
        model: str | None = None,
        with_tool_results: bool = False,
    ) -> None:
        """Answer requests whose message text contains ``match`` as described.

        The newest matching rule wins; ``match=""`` matches every chat request. ``times``
        limits how many requests the rule answers (None: unlimited). ``content`` defaults to
        ``"".join(chunks)`` when chunks are given, else to the echo reply; streams send
        ``chunks`` (default: ~4-character pieces of the content). ``chunk_delay`` is slept
        before each delta chunk after the role chunk. ``fail_after_chunks=k`` drops the
        connection after k such delta chunks (no finish chunk, no ``[DONE]``); on a
        non-streaming request it drops the connection without any response. Tool calls may
        be given in OpenAI's shape or as ``{"name", "arguments"}``; dict arguments are
        JSON-encoded and missing ids are generated per reply. ``stream_usage=False`` ignores
        ``stream_options.include_usage``, as llama.cpp's server does. ``model`` limits the
        rule to OpenAI-format requests for that model. ``with_tool_results`` appends the
        request's tool messages to ``content``, as a model answering from its tools would.
        """
        if times is not None and times < 1:
            raise ValueError("times must be None or >= 1")
        if fail_after_chunks is not None and fail_after_chunks < 0:
            raise ValueError("fail_after_chunks must be None or >= 0")
        if content is None and chunks is not None:
            content = "".join(chunks)
        rule = _Rule(
            match=match,
            content=content,
            chunks=list(chunks) if chunks is not None else None,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            status=status,
            error_body=error_body,
            headers=dict(headers) if headers else None,
            delay=delay,
            chunk_delay=chunk_delay,
            fail_after_chunks=fail_after_chunks,
            remaining=times,
            finish_reason=finish_reason,
            tool_calls=[_normalize_tool_call(c) for c in tool_calls] if tool_calls else None,
            stream_usage=stream_usage,
            model=model,
            with_tool_results=with_tool_results,
        )
        with self._lock:
            self._rules.append(rule)

    def requests_matching(self, match: str) -> list[RecordedRequest]:
        """Recorded requests whose message text contains ``match``."""
        with self._lock:
            recorded = list(self.requests)
        return [r for r in recorded if any(match in t for t in r.texts)]

    def reset(self) -> None:
        """Forget all scripted rules and recorded requests."""
        with self._lock:
            self._rules.clear()
            self.requests.clear()

    def _pick_rule(self, texts: Iterable[str], model: str | None = None) -> _Rule | None:
        texts = list(texts)
        with self._lock:
            rules = self._rules
            for i in range(len(rules) - 1, -1, -1):
                rule = rules[i]
                if rule.model is not None and rule.model != model:
                    continue
                if rule.match == "" or any(rule.match in t for t in texts):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            del rules[i]
                    return rule
        return None

    # ------------------------------------------------------------------ HTTP handling

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = await request.read() if request.body_exists else b""
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        rec: RecordedRequest | None = None
        if self._record:
            rec = RecordedRequest(
                method=request.method,
                path=request.path,
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                received_at=time.time(),
            )
            with self._lock:
                self.requests.append(rec)
        try:
            return await self._route(request, raw, body, rec)
        except asyncio.CancelledError:
            # handler_cancellation: the client went away while we were busy.
            if rec is not None and not self._stopping and not rec.completed:
                rec.client_disconnected = True
            raise

    async def _route(
        self, request: web.BaseRequest, raw: bytes, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        path = request.path
        method = request.method
        if path == "/v1/messages" and method == "POST":
            # the current SDK sends the key as a bearer token, older clients as x-api-key
            bearer = request.headers.get("Authorization", "").partition(" ")[2].strip()
            if not (request.headers.get("x-api-key", "").strip() or bearer):
                return await self._send_json(request, rec, 401, anthropic.error_body(401))
            return await self._messages(request, body, rec)
        gemini_route = gemini.ROUTE.fullmatch(path)
        if gemini_route and method == "POST":
            return await self._gemini(request, body, rec, gemini_route)
        if path == "/api/chat" and method == "POST":
            return await self._ollama_chat(request, body, rec)
        azure = _AZURE_CHAT.fullmatch(path)
        if azure and method == "POST":
            return await self._azure_chat(request, raw, body, rec, azure.group(1))
        if path.startswith("/v1/"):
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return await self._send_json(request, rec, 401, error_body(401, _NO_API_KEY))
        if path == "/v1/chat/completions" and method == "POST":
            return await self._chat(request, raw, body, rec)
        if path == "/v1/models" and method == "GET":
            return await self._send_bytes(request, rec, 200, self._models_body)
        if path.startswith("/v1/models/") and method == "GET":
            model = path[len("/v1/models/") :]
            if model in MODELS:
                return await self._send_json(request, rec, 200, self._model_object(model))
            message = f"The model '{model}' does not exist"
            payload = error_body(404, message, param="model", code="model_not_found")
            return await self._send_json(request, rec, 404, payload)
        payload = {
            "error": {
                "message": f"Invalid URL ({method} {path})",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
        return await self._send_json(request, rec, 404, payload)

    async def _chat(
        self, request: web.BaseRequest, raw: bytes, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        problem = _validate_chat(raw, body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        messages: list[dict[str, Any]] = body["messages"]
        texts = [message_text(m) for m in messages]
        rule = self._pick_rule(texts, body.get("model")) if self._rules else None

        content: str | None
        tool_calls: list[dict[str, Any]] | None = None
        finish_reason = "stop"
        extra_headers: dict[str, str] | None = None
        pieces: list[str] | None = None
        chunk_delay = 0.0
        fail_after: int | None = None
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        if rule is None:
            content = None
        else:
            if rule.delay > 0:
                await asyncio.sleep(rule.delay)
            if rule.status != 200:
                payload = (
                    rule.error_body if rule.error_body is not None else error_body(rule.status)
                )
                return await self._send_json(request, rec, rule.status, payload, rule.headers)
            content = rule.content
            if rule.with_tool_results:
                results = [message_text(m) for m in messages if m.get("role") == "tool"]
                content = " ".join([content or "From the tools:", " | ".join(results)])
            pieces = rule.chunks
            extra_headers = rule.headers
            chunk_delay = rule.chunk_delay
            fail_after = rule.fail_after_chunks
            prompt_tokens = rule.prompt_tokens
            completion_tokens = rule.completion_tokens
            finish_reason = rule.finish_reason
            if rule.tool_calls:
                tool_calls = [{**c, "id": c["id"] or "call_" + _hex_id()} for c in rule.tool_calls]
                if finish_reason == "stop":
                    finish_reason = "tool_calls"
        if content is None and tool_calls is None:
            last_user = ""
            for message in reversed(messages):
                if message.get("role") == "user":
                    last_user = message_text(message)
                    break
            content = ("Echo: " + last_user)[:_ECHO_LIMIT]

        if prompt_tokens is None:
            prompt_tokens = sum(len(t.split()) for t in texts) + 3 * len(texts)
        if completion_tokens is None:
            completion_tokens = len(content.split()) if content else 0
            for call in tool_calls or ():
                completion_tokens += len(call["function"]["arguments"].split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        model = body["model"]

        if body.get("stream") is True:
            if pieces is None:
                pieces = split_pieces(content) if content else []
            stream_options = body.get("stream_options")
            include_usage = (
                isinstance(stream_options, dict)
                and bool(stream_options.get("include_usage"))
                and (rule is None or rule.stream_usage)
            )
            frames = _stream_frames(
                model, content, pieces, tool_calls, finish_reason, usage, include_usage
            )
            return await self._send_stream(
                request, rec, frames, extra_headers, chunk_delay, fail_after
            )

        if fail_after is not None:
            _drop_connection(request)
            return web.Response(status=500)
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": None,
            "annotations": [],
        }
        if tool_calls is not None:
            message["tool_calls"] = tool_calls
        payload = {
            "id": "chatcmpl-" + _hex_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        return await self._send_json(request, rec, 200, payload, extra_headers)

    async def _azure_chat(
        self,
        request: web.BaseRequest,
        raw: bytes,
        body: Any,
        rec: RecordedRequest | None,
        deployment: str,
    ) -> web.StreamResponse:
        """Azure OpenAI: chat completions at a deployment URL, `api-key`, `api-version`."""
        if not request.headers.get("api-key", "").strip():
            denied = {"error": {"code": "401", "message": _AZURE_NO_KEY}}
            return await self._send_json(request, rec, 401, denied)
        if not request.query.get("api-version"):
            missing = {"error": {"code": "404", "message": "Resource not found"}}
            return await self._send_json(request, rec, 404, missing)
        if isinstance(body, dict):
            body = {**body, "model": deployment}  # the deployment decides the model
        return await self._chat(request, raw, body, rec)

    async def _plan(self, texts: list[str]) -> tuple[_Rule | None, _Plan | None]:
        """What the rules say to answer for these texts (the echo reply when none matches);
        `(rule, None)` when the matching rule is an error status."""
        rule = self._pick_rule(texts) if self._rules else None
        if rule is not None and rule.delay > 0:
            await asyncio.sleep(rule.delay)
        if rule is not None and rule.status != 200:
            return rule, None
        tool_calls = (rule.tool_calls if rule is not None else None) or None
        content = rule.content if rule is not None else None
        if content is None and tool_calls is None:
            content = ("Echo: " + (texts[-1] if texts else ""))[:_ECHO_LIMIT]
        finish = rule.finish_reason if rule is not None else "stop"
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        return rule, _Plan(
            content=content,
            tool_calls=tool_calls,
            finish=finish,
            prompt=(rule.prompt_tokens if rule else None) or sum(len(t.split()) + 3 for t in texts),
            completion=(rule.completion_tokens if rule else None) or len((content or "").split()),
            pieces=(rule.chunks if rule else None) or split_pieces(content or ""),
            headers=rule.headers if rule else None,
            chunk_delay=rule.chunk_delay if rule else 0.0,
            fail_after=rule.fail_after_chunks if rule else None,
        )

    async def _answer(
        self,
        request: web.BaseRequest,
        rec: RecordedRequest | None,
        texts: list[str],
        dialect: Any,
        model: str,
        stream: bool,
        extra: dict[str, Any] | None = None,
    ) -> web.StreamResponse:
        """Answer in a non-OpenAI dialect: a module with `error_body`, `whole` and `stream`."""
        rule, plan = await self._plan(texts)
        if plan is None:
            assert rule is not None
            payload = rule.error_body or dialect.error_body(rule.status)
            return await self._send_json(request, rec, rule.status, payload, rule.headers)
        if not stream:
            reply = dialect.whole(
                model, plan.content, plan.tool_calls, plan.finish, plan.prompt, plan.completion
            )
            return await self._send_json(request, rec, 200, reply, plan.headers)
        frames = dialect.stream(
            model, plan.pieces, plan.tool_calls, plan.finish, plan.prompt, plan.completion
        )
        headers = {**getattr(dialect, "STREAM_HEADERS", {}), **(plan.headers or {})}
        return await self._send_stream(
            request, rec, frames, headers, plan.chunk_delay, plan.fail_after, **(extra or {})
        )

    async def _gemini(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None, route: Any
    ) -> web.StreamResponse:
        """Gemini's generateContent and streamGenerateContent (`alt=sse`), by the same rules."""
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            denied = gemini.error_body(403, "Method doesn't allow unregistered callers.")
            return await self._send_json(request, rec, 403, denied)
        problem = gemini.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        stream = route.group(3) == "streamGenerateContent"
        return await self._answer(request, rec, gemini.texts(body), gemini, route.group(2), stream)

    async def _ollama_chat(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """Ollama's `/api/chat`, answering by the same rules; it streams unless told not to."""
        refused = ollama.validate(body)
        if refused is not None:
            return await self._send_json(request, rec, *refused)
        stream = body.get("stream", True) is not False
        return await self._answer(request, rec, ollama.texts(body), ollama, body["model"], stream)

    async def _messages(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """Anthropic's Messages API, answering by the same rules as chat completions."""
        problem = anthropic.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        return await self._answer(
            request,
            rec,
            anthropic.texts(body),
            anthropic,
            body["model"],
            body.get("stream") is True,
            {"fail_frame": anthropic.error_event()},
        )

    @staticmethod
    def _model_object(model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}

    async def _send_json(
        self,
        request: web.BaseRequest,
        rec: RecordedRequest | None,
        status: int,
        payload: Any,
        extra_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        return await self._send_bytes(
            request, rec, status, _encode(payload).encode(), extra_headers
        )

    async def _send_bytes(
        self,
        request: web.BaseRequest,
        rec: RecordedRequest | None,
        status: int,
        data: bytes,
        extra_headers: dict[str, str] | None = None,
    ) -> web.StreamResponse:
        headers = {
            "Content-Type": "application/json",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-request-id": "req_" + _hex_id(16),
        }
        if extra_headers:
            headers.update(extra_headers)
        resp = web.Response(status=status, body=data, headers=headers)
        if rec is None:
            return resp  # aiohttp writes it; nobody needs to know when it finished
        rec.status = status
        try:
            await resp.prepare(request)
            await resp.write_eof()
        except ConnectionError:
            rec.client_disconnected = True
            return resp
        rec.completed = True
        return resp

    async def _send_stream(
        self,
        request: web.BaseRequest,
        rec: RecordedRequest | None,
        frames: tuple[bytes, list[bytes], bytes],
        extra_headers: dict[str, str] | None,
        chunk_delay: float,
        fail_after: int | None,
        fail_frame: bytes | None = None,
    ) -> web.StreamResponse:
        """Send the frames; `fail_after` deltas in, drop the connection or send `fail_frame`."""
        first, deltas, tail = frames
        headers = {
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "1",
            "x-request-id": "req_" + _hex_id(16),
        }
        if extra_headers:
            headers.update(extra_headers)
        resp = web.StreamResponse(status=200, headers=headers)
        if rec is not None:
            rec.status = 200
        try:
            await resp.prepare(request)
            if chunk_delay <= 0 and fail_after is None:
                await resp.write(first + b"".join(deltas) + tail)
            else:
                await resp.write(first)
                for i, frame in enumerate(deltas):
                    if fail_after is not None and i >= fail_after:
                        break
                    if chunk_delay > 0:
                        await asyncio.sleep(chunk_delay)
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        raise ConnectionResetError("client went away")
                    await resp.write(frame)
                if fail_after is not None and fail_frame is not None:
                    await resp.write(fail_frame)
                    await resp.write_eof()
                    return resp
                if fail_after is not None:
                    _drop_connection(request)
                    return resp
                await resp.write(tail)
            await resp.write_eof()
        except ConnectionError:
            if rec is not None and not self._stopping:
                rec.client_disconnected = True
            return resp
        if rec is not None:
            rec.completed = True
        return resp


def _validate_chat(raw: bytes, body: Any) -> dict[str, Any] | None:
    """OpenAI's 400 error object for a malformed chat request, or None if it is usable."""
    if not isinstance(body, dict):
        if raw and body is not None:
            return error_body(400, "Invalid body: expected a JSON object.")
        return error_body(400, _INVALID_JSON)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_body(400, "you must provide a model parameter", param="model")
    messages = body.get("messages")
    if messages is None:
        return error_body(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        return error_body(
            400,
            "Invalid type for 'messages': expected an array.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        return error_body(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return error_body(
                400,
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return error_body(
            400,
            "Invalid type for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    return None


def _stream_frames(
    model: str,
    content: str | None,
    pieces: list[str],
    tool_calls: list[dict[str, Any]] | None,
    finish_reason: str,
    usage: dict[str, Any],
    include_usage: bool,
) -> tuple[bytes, list[bytes], bytes]:
    """Encoded SSE frames of one streamed reply: (role frame, delta frames, closing frames).

    The closing frames are the finish_reason chunk, the usage chunk (only with
    ``include_usage``) and ``data: [DONE]``.
    """
    base = (
        f'data: {{"id":"chatcmpl-{_hex_id()}","object":"chat.completion.chunk",'
        f'"created":{int(time.time())},"model":{_encode(model)},'
        f'"service_tier":"default","system_fingerprint":"{_FINGERPRINT}"'
    )
    head = base + ',"choices":[{"index":0,"delta":'
    usage_tail = ',"usage":null}\n\n' if include_usage else "}\n\n"
    open_tail = ',"logprobs":null,"finish_reason":null}]' + usage_tail

    first: dict[str, Any] = {"role": "assistant", "content": ""}
    deltas: list[dict[str, Any]] = [{"content": p} for p in pieces]
    for index, call in enumerate(tool_calls or ()):
        header = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        if index == 0 and content is None:
            # Like the real API: a tool-call-only reply announces the first call in the
            # role chunk, with null content.
            first = {"role": "assistant", "content": None, "tool_calls": [header]}
        else:
            deltas.append({"tool_calls": [header]})
        for fragment in split_pieces(call["function"]["arguments"]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    tail = head + '{},"logprobs":null,"finish_reason":' + _encode(finish_reason) + "}]" + usage_tail
    if include_usage:
        tail += base + ',"choices":[],"usage":' + _encode(usage) + "}\n\n"
    tail += "data: [DONE]\n\n"
    return (
        (head + _encode(first) + open_tail).encode(),
        [(head + _encode(d) + open_tail).encode() for d in deltas],
        tail.encode(),
    )


def _drop_connection(request: web.BaseRequest) -> None:
    """Cut the connection mid-response, as a failing upstream would."""
    transport = request.transport
    if transport is None:
        return
    if transport.get_write_buffer_size():
        transport.close()  # flush what the client was already sent, then FIN
    else:
        transport.abort()


def main(argv: list[str] | None = None) -> None:
    """Run the emulator standalone until killed."""
    parser = argparse.ArgumentParser(description="OpenAI chat-completions emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument(
        "--record", action="store_true", help="keep every request in memory (off by default)"
    )
    parser.add_argument(
        "--script",
        metavar="JSON",
        help="rules to answer with, as a JSON list of `script` arguments, e.g. "
        '\'[{"match": "slow", "chunks": ["a", "b"], "chunk_delay": 1.0}]\'',
    )
    args = parser.parse_args(argv)
    emulator = ProviderEmulator(args.host, args.port, record=args.record)
    for rule in json.loads(args.script) if args.script else []:
        emulator.script(rule.pop("match"), **rule)
    emulator.serve_forever()


if __name__ == "__main__":
    main()
