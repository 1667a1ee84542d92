"""The provider emulator's HTTP server: OpenAI (and Azure OpenAI), Anthropic, Gemini and
Ollama wire formats on one port, answering by scripted rules, recording every request.

Routes: OpenAI's ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/models``; Azure
OpenAI's ``/openai/deployments/{deployment}/chat/completions?api-version=…``; Anthropic's
``/v1/messages`` (its SDK's base URL is the emulator's root); Gemini's
``/v1[beta]/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``; Ollama's
native ``/api/chat`` (newline-delimited JSON streams). Each dialect module
(`tests/emulator/openai.py`, `anthropic.py`, `gemini.py`, `ollama.py`) reads its request and
writes its reply; the rules (`tests/emulator/rules.py`) decide the reply for all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from aiohttp import web

from tests.emulator import anthropic, gemini, ollama, openai
from tests.emulator.rules import Ask, Rule, Rules, normalize_tool_call

SENT_AT = b"{sent_at}"  # in a delayed chunk's text: the wall-clock time it was sent at

__all__ = ["ProviderEmulator", "RecordedRequest", "main"]

_encode = json.JSONEncoder(separators=(",", ":")).encode


def _hex_id(nbytes: int = 12) -> str:
    return os.urandom(nbytes).hex()


def _body_texts(body: Any) -> list[str]:
    """Texts of all messages of a request body (empty when it has none)."""
    if isinstance(body, dict) and isinstance(body.get("contents"), list):
        return gemini.texts(body)
    return openai.texts(body)


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


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ProviderEmulator:
    """An HTTP server speaking five providers' wire formats with scriptable replies, running
    on its own event loop.

    In tests::

        emu = ProviderEmulator().start()
        emu.script("boom", status=500)            # any request mentioning "boom" gets a 500
        ...                                       # point a client at emu.base_url
        emu.stop()

    Standalone (benchmarks)::

        python -m tests.emulator --port 9100 [--record]
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, record: bool = True) -> None:
        self.host = host
        self._port = port
        self._record = record
        self.requests: list[RecordedRequest] = []
        self._rules = Rules()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.ServerRunner | None = None
        self._stopping = False
        self._models_body = _encode(
            {
                "object": "list",
                "data": [openai.model_object(m) for m in openai.MODELS],
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
        probability: float = 1.0,
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
        ``probability`` < 1 makes the rule apply to that share of its requests at random (the
        others go to the older rules): a provider failing now and then. With ``chunk_delay``,
        ``{sent_at}`` in a chunk's text becomes the wall-clock time it was sent at (seconds,
        six decimals), so a client can tell how late a gateway relayed it.
        """
        if not 0.0 < probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")
        if times is not None and times < 1:
            raise ValueError("times must be None or >= 1")
        if fail_after_chunks is not None and fail_after_chunks < 0:
            raise ValueError("fail_after_chunks must be None or >= 0")
        if content is None and chunks is not None:
            content = "".join(chunks)
        rule = Rule(
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
            tool_calls=[normalize_tool_call(c) for c in tool_calls] if tool_calls else None,
            stream_usage=stream_usage,
            model=model,
            with_tool_results=with_tool_results,
            probability=probability,
        )
        self._rules.add(rule)

    def unscript(self, match: str) -> None:
        """Forget every rule scripted for ``match`` (the recorded requests stay)."""
        self._rules.remove(match)

    def requests_matching(self, match: str) -> list[RecordedRequest]:
        """Recorded requests whose message text contains ``match``."""
        with self._lock:
            recorded = list(self.requests)
        return [r for r in recorded if any(match in t for t in r.texts)]

    def reset(self) -> None:
        """Forget all scripted rules and recorded requests."""
        self._rules.clear()
        with self._lock:
            self.requests.clear()

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
            return await self._route(request, body, rec)
        except asyncio.CancelledError:
            # handler_cancellation: the client went away while we were busy.
            if rec is not None and not self._stopping and not rec.completed:
                rec.client_disconnected = True
            raise

    async def _route(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
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
        if path == "/api/tags" and method == "GET":  # Ollama's model listing
            return await self._send_json(request, rec, 200, {"models": []})
        azure = openai.AZURE_ROUTE.fullmatch(path)
        if azure and method == "POST":
            return await self._azure_chat(request, body, rec, azure.group(1))
        if path.startswith("/v1/"):
            auth = request.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            google_key = request.headers.get("x-goog-api-key", "").strip()  # Gemini's
            if (scheme.lower() != "bearer" or not token.strip()) and not google_key:
                refused = openai.error_body(401, openai.NO_API_KEY)
                return await self._send_json(request, rec, 401, refused)
        if path == "/v1/chat/completions" and method == "POST":
            return await self._chat(request, body, rec)
        if path == "/v1/embeddings" and method == "POST":
            return await self._embeddings(request, body, rec)
        if path == "/v1/models" and method == "GET":
            return await self._send_bytes(request, rec, 200, self._models_body)
        if path.startswith("/v1/models/") and method == "GET":
            model = path[len("/v1/models/") :]
            if model in openai.MODELS:
                return await self._send_json(request, rec, 200, openai.model_object(model))
            message = f"The model '{model}' does not exist"
            payload = openai.error_body(404, message, param="model", code="model_not_found")
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
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """OpenAI's chat completions."""
        problem = openai.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        stream = body.get("stream") is True
        return await self._answer(request, rec, openai, openai.ask(body), body["model"], stream)

    async def _embeddings(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """OpenAI's embeddings: deterministic bag-of-words vectors (`openai.embedding_vector`).

        Scripted rules do not apply: they script chat replies, and the embedding of a prompt
        must not use up a rule meant for its completion.
        """
        problem = openai.validate_embeddings(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        if body["model"] not in openai.EMBEDDING_MODELS:
            missing = openai.unknown_embedding_model(body["model"])
            return await self._send_json(request, rec, 404, missing)
        return await self._send_json(request, rec, 200, openai.embeddings(body))

    async def _azure_chat(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None, deployment: str
    ) -> web.StreamResponse:
        """Azure OpenAI: chat completions at a deployment URL, `api-key`, `api-version`."""
        if not request.headers.get("api-key", "").strip():
            denied = {"error": {"code": "401", "message": openai.AZURE_NO_KEY}}
            return await self._send_json(request, rec, 401, denied)
        if not request.query.get("api-version"):
            missing = {"error": {"code": "404", "message": "Resource not found"}}
            return await self._send_json(request, rec, 404, missing)
        if isinstance(body, dict):
            body = {**body, "model": deployment}  # the deployment decides the model
        return await self._chat(request, body, rec)

    async def _messages(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """Anthropic's Messages API; a stream that fails midway ends with an `error` event."""
        problem = anthropic.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        stream = body.get("stream") is True
        fail_frame = anthropic.error_event()
        return await self._answer(
            request, rec, anthropic, anthropic.ask(body), body["model"], stream, fail_frame
        )

    async def _gemini(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None, route: Any
    ) -> web.StreamResponse:
        """Gemini's generateContent and streamGenerateContent (`alt=sse`)."""
        if not (request.headers.get("x-goog-api-key") or request.query.get("key")):
            denied = gemini.error_body(403, "Method doesn't allow unregistered callers.")
            return await self._send_json(request, rec, 403, denied)
        problem = gemini.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        stream = route.group(3) == "streamGenerateContent"
        return await self._answer(request, rec, gemini, gemini.ask(body), route.group(2), stream)

    async def _ollama_chat(
        self, request: web.BaseRequest, body: Any, rec: RecordedRequest | None
    ) -> web.StreamResponse:
        """Ollama's `/api/chat`; it streams unless told not to."""
        problem = ollama.validate(body)
        if problem is not None:
            return await self._send_json(request, rec, 400, problem)
        stream = body.get("stream", True) is not False
        return await self._answer(request, rec, ollama, ollama.ask(body), body["model"], stream)

    async def _answer(
        self,
        request: web.BaseRequest,
        rec: RecordedRequest | None,
        dialect: ModuleType,
        ask: Ask,
        model: str,
        stream: bool,
        fail_frame: bytes | None = None,
    ) -> web.StreamResponse:
        """Answer a valid request as the rules plan it, in the dialect's format: a module with
        `error_body`, `whole`, `stream` and `STREAM_HEADERS`."""
        rule, plan = await self._rules.plan(ask)
        if plan is None:
            assert rule is not None
            payload = rule.error_body
            if payload is None or not (payload or ask.openai):
                payload = dialect.error_body(rule.status)
            return await self._send_json(request, rec, rule.status, payload, rule.headers)
        if not stream:
            if plan.fail_after is not None and plan.drop_whole:
                _drop_connection(request)
                return web.Response(status=500)
            reply = dialect.whole(model, plan)
            return await self._send_json(request, rec, 200, reply, plan.headers)
        headers = {**dialect.STREAM_HEADERS, **(plan.headers or {})}
        frames = dialect.stream(model, plan)
        return await self._send_stream(
            request, rec, frames, headers, plan.chunk_delay, plan.fail_after, fail_frame
        )

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
                    if SENT_AT in frame:
                        frame = frame.replace(SENT_AT, b"%.6f" % time.time())
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
    parser = argparse.ArgumentParser(
        description="Provider emulator (OpenAI, Azure OpenAI, Anthropic, Gemini, Ollama)"
    )
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
