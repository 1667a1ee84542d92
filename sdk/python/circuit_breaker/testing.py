"""A fake Circuit Breaker gateway for your unit tests: a real HTTP server on 127.0.0.1 (a free
port, a background thread) that speaks the gateway's wire format, with its state in memory.

    from circuit_breaker.testing import FakeGateway

    def test_summary() -> None:
        with FakeGateway() as gw:
            gw.reply_for("summarise", "Short.", usage={"prompt_tokens": 9, "completion_tokens": 2})
            client = gw.client()                       # a Client of the fake's tenant
            agent = client.agents.create(name="Summariser", model="cb:smart-chat")
            assert client.agents.execute(agent.id, prompt="summarise this").content == "Short."
            assert gw.requests[-1].json["prompt"] == "summarise this"

What it serves (in the real shapes of docs/api.md, errors as `{"error": {"type", "message",
…}}`, or OpenAI's error object on `/v1/*`):

- auth: `Authorization: Bearer <gw.api_key>` (else 401 `authentication_failed`) and
  `X-Tenant-ID: <gw.tenant_id>` on `/api/v1/*` (missing: 400 `missing_tenant`; another
  tenant: 403 `permission_denied`); optional on `/v1/*`; `GET /v1/models` answers without
  credentials (the public catalog);
- agents: `POST/GET /api/v1/agents`, `GET/PATCH/DELETE /api/v1/agents/{id}` (versions,
  `Idempotency-Key` on create);
- executions: `POST …/execute`, `POST …/execute/stream` (SSE: `execution_start`,
  `content_chunk`s, `usage_update`, `execution_complete` or `error`, ids 1, 2, …, heartbeats,
  `stream_options`), `GET /api/v1/executions[/{id}]`, `GET /api/v1/executions/{id}/stream`
  (`Last-Event-ID` replay, then live), `POST /api/v1/executions/{id}/cancel`;
- `POST /v1/chat/completions` (whole and `stream`, `agent:<id>` models), `GET /v1/models`,
  `GET /api/v1/models` (with `ETag`), `GET /api/v1/tools`, `GET /api/v1/providers`,
  `GET /health`;
- data subjects: an execution's `subject` (OpenAI's and GraphQL's `user`) is recorded;
  `GET /api/v1/subjects/{subject}` lists its executions (with their `input`), `…/export`
  answers them as JSON lines (each execution, then its stream events as `{"kind": "event",
  "aggregate_id", "version", "topic", "data"}`), `DELETE` erases them (history then shows
  `"payload": "erased"` and `[erased]` texts; a later execution of the subject is not);
  `GET/PUT/DELETE /api/v1/retention` keep the setting (nothing is swept);
- quality: `POST /api/v1/executions/{id}/feedback` records a score (checked; 409 while it
  runs), shown in the execution's `feedback` and `quality`; `GET/PUT/DELETE /api/v1/judge`
  keep the default judge (no judge ever runs; judging one execution now and experiments are
  not served);
- `POST /graphql` (needs `graphql-core`: `pip install 'circuit-breaker-sdk[testing]'`) against
  the gateway's schema (packaged as `circuit_breaker/schema.graphql`): `health`, `agents`,
  `agent(id)` with its extension fields, `agentList`, `agentExecution`, `resourceExecutions`,
  `tools`, `mcpServers`, `llmProviders`, `budgetStatus`, `costAnalytics`, `deprecatedUsage`,
  and the mutations `createAgent`, `updateAgent`, `deleteAgent`, `llmChatCompletion`,
  `setBudget`. Other fields answer a GraphQL error; subscriptions are not served.

Scripting:

- `gw.reply(text, usage=…, chunks=…, delay=…, cut_after=…, error_type=…)`: the answer to every
  prompt no `reply_for` matches (default: `"Echo: <prompt>"`);
- `gw.reply_for(prompt_substring, text, …)`: the answer to prompts containing the substring
  (the first added that matches wins). `usage` sets `prompt_tokens`, `completion_tokens`,
  `cost_usd`, `cached_tokens`; `chunks` the streamed pieces (default: word by word); `delay`
  seconds before each chunk (so a stream can be cancelled or resumed while it runs);
  `cut_after=N` drops the first connection of a stream after N events (the SDK resumes with
  `Last-Event-ID`); `error_type` fails the execution after the content (an `error` event, or
  the error status with the execution id);
- `gw.fail(status, error_type, times=1, retry_after=None, path=None, method=None, message=None,
  details=None)`: the next `times` requests (whose path contains `path`, if given) are answered
  with that error, `Retry-After` included; provider-side types (`provider_*`,
  `context_length_exceeded`, …) on an execute also record a failed execution and carry its id,
  as the gateway does (so the SDKs do not retry them);
- `gw.requests`: every request received, oldest first (`RecordedRequest`: `method`, `path`,
  `query`, `headers` with lower-case names, `json`); `gw.requests_to(path_part)` filters them;
- `gw.agents` and `gw.executions`: the state, as the REST API shows it; `gw.reset()` clears
  everything scripted, recorded and stored (retention included).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from circuit_breaker.client import AsyncClient, Client

__all__ = ["FakeGateway", "RecordedRequest"]

VIRTUAL_MODELS = (
    "auto", "cb:smart-chat", "cb:cost-optimal", "cb:fastest", "cb:coding", "cb:analysis",
    "cb:creative",
)  # fmt: skip
SCOPES = [
    "agents:read", "agents:write", "agents:execute", "executions:read", "analytics:read",
    "tenant:admin",
]  # fmt: skip
EVENT_TYPES = [
    "execution_start", "content_chunk", "tool_call", "tool_result", "usage_update",
    "execution_complete", "error",
]  # fmt: skip
# the status each error type is answered with (docs/api.md)
STATUSES = {
    "invalid_request": 400, "missing_tenant": 400, "model_not_found": 400,
    "capability_not_supported": 400, "provider_rejected_request": 400,
    "context_length_exceeded": 400, "unknown_tool": 400, "authentication_failed": 401,
    "budget_exceeded": 402, "permission_denied": 403, "model_not_allowed": 403,
    "not_found": 404, "conflict": 409, "resume_unavailable": 410, "payload_too_large": 413,
    "tool_iteration_limit": 422, "rate_limited": 429, "provider_rate_limited": 429,
    "provider_error": 502, "provider_authentication_failed": 502, "service_unavailable": 503,
    "overloaded": 503, "provider_overloaded": 503, "no_model_available": 503,
    "provider_timeout": 504, "execution_cancelled": 499,
}  # fmt: skip
# types that are an execution's outcome: recorded, with the execution's id
OUTCOME_TYPES = frozenset(
    {"provider_error", "provider_timeout", "provider_rate_limited", "provider_overloaded",
     "provider_authentication_failed", "provider_rejected_request", "context_length_exceeded",
     "tool_iteration_limit", "no_model_available"}
)  # fmt: skip
OPENAI_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "invalid_request_error", 409: "invalid_request_error", 413: "invalid_request_error",
    422: "invalid_request_error", 429: "rate_limit_error",
}  # fmt: skip
ERASED = "[erased]"  # a text whose key is gone
ERASED_INPUT = {"erased": True}  # an erased request, as history shows its input
RATE_HEADERS = {
    "X-RateLimit-Limit": "600",
    "X-RateLimit-Remaining": "599",
    "X-RateLimit-Reset": "0",
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or [text]


@dataclass
class RecordedRequest:
    """One request the fake received: `headers` have lower-case names, `json` is the parsed
    body (None without one)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any

    def header(self, name: str) -> str | None:
        """A header's value by name, any case."""
        return self.headers.get(name.lower())


@dataclass
class _Reply:
    match: str | None
    text: str | None  # None: echo the prompt
    usage: dict[str, Any]
    chunks: list[str] | None
    delay: float
    cut_after: int | None
    error_type: str | None

    def pieces(self, prompt: str) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return _words(self.content(prompt))

    def content(self, prompt: str) -> str:
        if self.chunks is not None and self.text is None:
            return "".join(self.chunks)
        return f"Echo: {prompt}" if self.text is None else self.text


@dataclass
class _Failure:
    status: int
    error_type: str
    message: str
    times: int
    retry_after: float | None
    path: str | None
    method: str | None
    details: Any


class _Refusal(Exception):
    """An error answer: status, type, message, and what the body adds."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        details: Any = None,
        retry_after: float | None = None,
        execution_id: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.details = details
        self.retry_after = retry_after
        self.execution_id = execution_id
        self.param = param

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.error_type, "message": self.message}
        if self.execution_id:
            out["execution_id"] = self.execution_id
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.details is not None:
            out["details"] = self.details
        return out


def _not_found(what: str) -> _Refusal:
    return _Refusal(404, "not_found", f"{what} not found")


def _invalid(loc: str, message: str) -> _Refusal:
    return _Refusal(
        400, "invalid_request", f"{loc}: {message}", details=[{"loc": loc, "message": message}],
        param=loc.removeprefix("body."),
    )  # fmt: skip


@dataclass
class _Execution:
    id: str
    agent_id: str | None
    kind: str
    stream: bool
    model_requested: str
    prompt: str
    reply: _Reply
    request_metadata: dict[str, Any]
    status: str = "running"
    started_at: float = field(default_factory=time.time)
    completed_at: float | None = None
    text: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    cancel_requested: bool = False
    on_disconnect: str = "cancel"
    include_usage: bool = True
    first_connection: bool = True
    subject: str | None = None  # the data subject (`subject`, or OpenAI's `user`)
    request: dict[str, Any] = field(default_factory=dict)  # history's `input`
    erased: bool = False  # its subject was erased
    feedback: list[dict[str, Any]] = field(default_factory=list)  # scores given on it

    @property
    def done(self) -> bool:
        return self.status != "running"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.gateway._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # quiet: tests read `gw.requests`


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        super().__init__(("127.0.0.1", 0), _Handler)


class FakeGateway:
    """An in-process fake of the gateway (see the module's docstring). Use it as a context
    manager, or call `start()` and `close()`."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        tenant_id: str | None = None,
        model_resolved: str = "fake-model",
        provider: str = "fake",
    ) -> None:
        self.api_key = api_key or f"cbk_test_{secrets.token_hex(8)}"
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.model_resolved = model_resolved
        self.provider = provider
        self.requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._agents: dict[str, dict[str, Any]] = {}
        self._executions: dict[str, _Execution] = {}
        self._default = _Reply(None, None, {}, None, 0.0, None, None)
        self._replies: list[_Reply] = []
        self._failures: list[_Failure] = []
        self._idempotent: dict[tuple[str, str], tuple[int, Any]] = {}
        self._budget: dict[str, Any] | None = None
        self._retention: dict[str, Any] | None = None
        self._judge: dict[str, Any] | None = None
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._closing = False
        self._schema: Any = None

    # ---------------------------------------------------------------- life cycle

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:53121`."""
        if self._server is None:
            raise RuntimeError("the fake gateway is not running: start() it first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGateway:
        """Listen on a free port of 127.0.0.1 and serve in a background thread."""
        if self._server is None:
            self._closing = False
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="cb-fake-gateway", daemon=True
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (open streams end)."""
        if self._server is None:
            return
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def __enter__(self) -> FakeGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def client(self, **options: Any) -> Client:
        """A `Client` of the fake's tenant; `options` go to `Client` (e.g. `max_retries`)."""
        return Client(self.url, self.tenant_id, self.api_key, **options)

    def async_client(self, **options: Any) -> AsyncClient:
        """An `AsyncClient` of the fake's tenant."""
        return AsyncClient(self.url, self.tenant_id, self.api_key, **options)

    # ---------------------------------------------------------------- scripting

    def reply(
        self,
        text: str | None = None,
        *,
        usage: dict[str, Any] | None = None,
        chunks: list[str] | None = None,
        delay: float = 0.0,
        cut_after: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """The answer to every prompt no `reply_for` matches (None: `"Echo: <prompt>"`)."""
        with self._lock:
            self._default = _Reply(None, text, usage or {}, chunks, delay, cut_after, error_type)

    def reply_for(
        self,
        prompt_substring: str,
        text: str | None = None,
        *,
        usage: dict[str, Any] | None = None,
        chunks: list[str] | None = None,
        delay: float = 0.0,
        cut_after: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """The answer to prompts that contain `prompt_substring` (first added, first used)."""
        rule = _Reply(prompt_substring, text, usage or {}, chunks, delay, cut_after, error_type)
        with self._lock:
            self._replies.append(rule)

    def fail(
        self,
        status: int,
        error_type: str,
        *,
        times: int = 1,
        retry_after: float | None = None,
        path: str | None = None,
        method: str | None = None,
        message: str | None = None,
        details: Any = None,
    ) -> None:
        """Answer the next `times` requests (those whose path contains `path` and, if given,
        with `method`; `/health` never) with this error."""
        if details is None and error_type == "rate_limited":
            details = {"limit": "requests_per_minute"}
        failure = _Failure(
            status, error_type, message or f"{error_type} (injected by FakeGateway)", times,
            retry_after, path, method.upper() if method else None, details,
        )  # fmt: skip
        with self._lock:
            self._failures.append(failure)

    def requests_to(self, path_part: str, method: str | None = None) -> list[RecordedRequest]:
        """The recorded requests whose path contains `path_part` (and with `method`)."""
        with self._lock:
            return [
                r
                for r in self.requests
                if path_part in r.path and (method is None or r.method == method.upper())
            ]

    @property
    def agents(self) -> list[dict[str, Any]]:
        """The tenant's agents as `GET /api/v1/agents` shows them."""
        with self._lock:
            return [dict(a) for a in self._agents.values()]

    @property
    def executions(self) -> list[dict[str, Any]]:
        """Every execution as history shows it, oldest first."""
        with self._lock:
            return [self._history(e) for e in self._executions.values()]

    def reset(self) -> None:
        """Forget replies, failures, recorded requests, agents and executions."""
        with self._lock:
            self.requests.clear()
            self._agents.clear()
            self._executions.clear()
            self._replies.clear()
            self._failures.clear()
            self._idempotent.clear()
            self._default = _Reply(None, None, {}, None, 0.0, None, None)
            self._budget = None
            self._retention = None
            self._judge = None

    # ---------------------------------------------------------------- HTTP

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path, query = parts.path, parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in h.headers.items()}
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                bad_json = True
        with self._lock:
            self.requests.append(RecordedRequest(h.command, path, query, headers, body))
        openai = path.startswith("/v1/")
        try:
            if bad_json:
                raise _invalid("body", "JSON decode error")
            self._injected(h.command, path)
            self._route(h, h.command, path, query, headers, body)
        except _Refusal as err:
            self._send_error(h, err, openai)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # a bug of the fake, or a body it did not expect: say so
            self._send_error(h, _Refusal(500, "internal_error", f"FakeGateway: {exc!r}"), openai)

    def _injected(self, method: str, path: str) -> None:
        if path in ("/health", "/ready"):
            return
        with self._lock:
            for failure in self._failures:
                if failure.path is not None and failure.path not in path:
                    continue
                if failure.method is not None and failure.method != method:
                    continue
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                execution_id = None
                if failure.error_type in OUTCOME_TYPES and path.endswith(("/execute", "/stream")):
                    execution_id = self._failed_execution(path, failure)
                raise _Refusal(
                    failure.status, failure.error_type, failure.message,
                    details=failure.details, retry_after=failure.retry_after,
                    execution_id=execution_id,
                )  # fmt: skip

    def _failed_execution(self, path: str, failure: _Failure) -> str:
        match = re.fullmatch(r"/api/v1/agents/([^/]+)/execute(?:/stream)?", path)
        agent_id = unquote(match.group(1)) if match else None
        agent = self._agents.get(agent_id or "")
        run = _Execution(
            str(uuid.uuid4()), agent_id, "agent_execution", path.endswith("/stream"),
            (agent or {}).get("model") or "cb:smart-chat", "", self._default, {},
        )  # fmt: skip
        run.status, run.completed_at = "failed", time.time()
        run.error = {"type": failure.error_type, "message": failure.message}
        self._executions[run.id] = run
        return run.id

    def _send_json(
        self, h: _Handler, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        h.send_response(status)
        if body is not None:
            h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(data)

    def _send_error(self, h: _Handler, err: _Refusal, openai: bool) -> None:
        headers: dict[str, str] = {}
        if err.retry_after is not None:
            headers["Retry-After"] = str(max(0, round(err.retry_after)))
        if err.error_type == "rate_limited":
            headers.update({**RATE_HEADERS, "X-RateLimit-Remaining": "0"})
        if openai:
            status = 404 if err.error_type == "model_not_found" else err.status
            kind = OPENAI_TYPES.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            )
            body: dict[str, Any] = {
                "error": {"message": err.message, "type": kind, "param": err.param,
                          "code": err.error_type}
            }  # fmt: skip
            if err.execution_id:
                headers["x-cb-execution-id"] = err.execution_id
        else:
            status = err.status
            body = {"error": err.as_dict()}
            if err.execution_id:
                body["execution_id"] = err.execution_id
        self._send_json(h, status, body, headers)

    # ---------------------------------------------------------------- auth

    def _authenticate(self, headers: dict[str, str], path: str) -> bool:
        """Check the credential (and the tenant off `/v1/*`); False when none was sent where
        none is needed (the public `GET /v1/models`, GraphQL's `health`)."""
        authorization = headers.get("authorization")
        if authorization is None and (path == "/v1/models" or path == "/graphql"):
            return False
        if not authorization or not authorization.lower().startswith("bearer "):
            raise _Refusal(401, "authentication_failed", "missing Authorization: Bearer <api key>")
        if authorization[7:].strip() != self.api_key:
            raise _Refusal(401, "authentication_failed", "unknown, revoked or expired API key")
        tenant = headers.get("x-tenant-id")
        if tenant is None and not path.startswith("/v1/"):
            raise _Refusal(400, "missing_tenant", "missing X-Tenant-ID header")
        if tenant is not None and tenant != self.tenant_id:
            raise _Refusal(403, "permission_denied", "the API key does not belong to this tenant")
        return True

    # ---------------------------------------------------------------- routes

    def _route(
        self,
        h: _Handler,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: Any,
    ) -> None:
        if path in ("/health", "/ready") and method == "GET":
            return self._send_json(h, 200, {"status": "ok"})
        authed = self._authenticate(headers, path)
        if path == "/graphql" and method == "POST":
            return self._send_json(h, 200, self._graphql(body, authed))
        if path == "/v1/models" and method == "GET":
            return self._send_json(h, 200, self._openai_models())
        if path == "/v1/chat/completions" and method == "POST":
            return self._chat_completion(h, body)
        if path == "/api/v1/agents":
            if method == "POST":
                return self._create_agent(h, headers, body)
            if method == "GET":
                with self._lock:
                    return self._send_json(h, 200, {"agents": self.agents})
        if m := re.fullmatch(r"/api/v1/agents/([^/]+)", path):
            agent_id = unquote(m.group(1))
            if method == "GET":
                return self._send_json(h, 200, self._agent(agent_id))
            if method == "PATCH":
                return self._send_json(h, 200, self._update_agent(agent_id, body or {}))
            if method == "DELETE":
                return self._send_json(h, 200, self._delete_agent(agent_id))
        if (m := re.fullmatch(r"/api/v1/agents/([^/]+)/execute(/stream)?", path)) and (
            method == "POST"
        ):
            return self._execute(h, unquote(m.group(1)), body, headers, bool(m.group(2)))
        if path == "/api/v1/executions" and method == "GET":
            return self._send_json(h, 200, self._list_executions(query))
        if (m := re.fullmatch(r"/api/v1/executions/([^/]+)/feedback", path)) and method == "POST":
            return self._send_json(h, 201, self._give_feedback(unquote(m.group(1)), body))
        if m := re.fullmatch(r"/api/v1/executions/([^/]+)(/stream|/cancel)?", path):
            execution_id, tail = unquote(m.group(1)), m.group(2)
            if tail is None and method == "GET":
                with self._lock:
                    return self._send_json(h, 200, self._history(self._run(execution_id)))
            if tail == "/stream" and method == "GET":
                return self._resume(h, execution_id, headers, query)
            if tail == "/cancel" and method == "POST":
                return self._send_json(h, 200, self._cancel(execution_id))
        if path == "/api/v1/models" and method == "GET":
            return self._models(h, headers)
        if path == "/api/v1/tools" and method == "GET":
            return self._send_json(h, 200, {"tools": []})
        if path == "/api/v1/providers" and method == "GET":
            return self._send_json(h, 200, {"providers": [self._provider_view()]})
        if m := re.fullmatch(r"/api/v1/subjects/([^/]+)(/export)?", path):
            subject, export = _subject(unquote(m.group(1))), bool(m.group(2))
            if method == "GET" and export:
                return self._export_subject(h, subject)
            if method == "GET":
                return self._send_json(h, 200, self._list_subject(subject))
            if method == "DELETE" and not export:
                return self._send_json(h, 200, self._erase_subject(subject))
        if path == "/api/v1/judge":
            with self._lock:
                if method == "PUT":
                    self._judge = _judge(body)
                elif method == "DELETE":
                    self._judge = None
                if method in ("GET", "PUT", "DELETE"):
                    return self._send_json(h, 200, {"judge": self._judge})
        if path == "/api/v1/retention":
            if method == "GET":
                with self._lock:
                    return self._send_json(h, 200, {"retention": self._retention})
            if method == "PUT":
                return self._send_json(h, 200, self._set_retention(_retention(body)))
            if method == "DELETE":
                return self._send_json(h, 200, self._set_retention(None))
        raise _Refusal(404, "not_found", f"FakeGateway does not serve {method} {path}")

    # ---------------------------------------------------------------- agents

    def _agent(self, agent_id: str) -> dict[str, Any]:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise _not_found(f"agent {agent_id}")
            return dict(agent)

    def _new_agent(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _invalid("body", "Input should be a valid dictionary")
        for name in ("name", "model"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _invalid(f"body.{name}", "Field required")
        now = _now_iso()
        agent = {
            "id": str(uuid.uuid4()),
            "tenant_id": self.tenant_id,
            "name": body["name"],
            "description": body.get("description") or "",
            "model": body["model"],
            "system_prompt": body.get("system_prompt") or "",
            "user_template": body.get("user_template") or "{prompt}",
            "parameters": {
                k: v for k, v in (body.get("parameters") or {}).items() if v is not None
            },
            "tools": list(body.get("tools") or []),
            "capabilities": list(body.get("capabilities") or []),
            "tags": list(body.get("tags") or []),
            "provider_type": body.get("provider_type"),
            "context_instructions": body.get("context_instructions"),
            **{k: body[k] for k in ("cache", "guardrails") if body.get(k) is not None},
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        with self._lock:
            self._agents[agent["id"]] = agent
        return dict(agent)

    def _create_agent(self, h: _Handler, headers: dict[str, str], body: Any) -> None:
        key = headers.get("idempotency-key")
        with self._lock:
            if key and ("agents", key) in self._idempotent:
                status, answer = self._idempotent[("agents", key)]
                return self._send_json(h, status, answer, {"Idempotent-Replayed": "true"})
            agent = self._new_agent(body)
            if key:
                self._idempotent[("agents", key)] = (201, agent)
        self._send_json(h, 201, agent)

    def _update_agent(self, agent_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            agent = self._agents.get(agent_id)
            if agent is None:
                raise _not_found(f"agent {agent_id}")
            for name, value in changes.items():
                if value is None:
                    continue
                if name == "parameters":
                    agent["parameters"] = {**agent["parameters"], **value}
                else:
                    agent[name] = value
            agent["version"] += 1
            agent["updated_at"] = _now_iso()
            return dict(agent)

    def _delete_agent(self, agent_id: str) -> dict[str, Any]:
        with self._lock:
            if self._agents.pop(agent_id, None) is None:
                raise _not_found(f"agent {agent_id}")
        return {"id": agent_id, "deleted": True}

    # ---------------------------------------------------------------- executions

    def _reply_to(self, prompt: str) -> _Reply:
        with self._lock:
            for rule in self._replies:
                if rule.match is not None and rule.match in prompt:
                    return rule
            return self._default

    def _new_run(
        self,
        agent_id: str | None,
        kind: str,
        stream: bool,
        model: str,
        prompt: str,
        metadata: dict[str, Any] | None,
        subject: str | None = None,
        request: dict[str, Any] | None = None,
    ) -> _Execution:
        run = _Execution(
            str(uuid.uuid4()), agent_id, kind, stream, model, prompt, self._reply_to(prompt),
            dict(metadata or {}), subject=subject, request=dict(request or {}),
        )  # fmt: skip
        with self._lock:
            self._executions[run.id] = run
        return run

    def _usage(self, run: _Execution, content: str, pieces: int) -> dict[str, Any]:
        scripted = run.reply.usage
        prompt_tokens = int(scripted.get("prompt_tokens", max(1, len(run.prompt) // 4)))
        completion_tokens = int(scripted.get("completion_tokens", max(1, pieces)))
        cost = scripted.get("cost_usd", (prompt_tokens * 1.0 + completion_tokens * 2.0) / 1e6)
        return {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cached_tokens": int(scripted.get("cached_tokens", 0)),
            "estimated": False,
            "cost_usd": cost,
        }

    def _result(self, run: _Execution) -> dict[str, Any]:
        """The execution's result document (`execute`'s answer, `execution_complete`)."""
        completed = run.status == "completed"
        duration = round(((run.completed_at or time.time()) - run.started_at) * 1000, 3)
        response: dict[str, Any] = {"content": run.text, "tool_calls": []}
        if completed:
            response.update(finish_reason="stop", tool_results=[])
        return {
            "execution_id": run.id,
            "agent_id": run.agent_id,
            "status": run.status,
            "response": response,
            "usage": run.usage,
            "metadata": {
                "model_requested": run.model_requested,
                "model_resolved": self.model_resolved,
                "provider": self.provider,
                "provider_model": self.model_resolved,
                "duration_ms": duration,
                "attempts": 1,
                "attempt_log": [],
                "fallback_used": False,
                "dropped_parameters": [],
                "adjusted_parameters": {},
                "routing": {
                    "requested": run.model_requested,
                    "strategy": "balanced",
                    "resolved": self.model_resolved,
                    "fallbacks": [],
                    "candidates": [{"model": self.model_resolved, "skipped": None}],
                },
                "request_metadata": run.request_metadata,
            },
            "error": run.error,
        }

    def _history(self, run: _Execution) -> dict[str, Any]:
        """The execution as `GET /api/v1/executions/{id}` shows it."""
        usage = run.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        view: dict[str, Any] = {
            "execution_id": run.id,
            "kind": run.kind,
            "agent_id": run.agent_id,
            "status": run.status,
            "model_requested": run.model_requested,
            "model_resolved": self.model_resolved,
            "provider": self.provider,
            "stream": run.stream,
            "started_at": run.started_at,
            "completed_at": run.completed_at,
            "usage": {
                "prompt_tokens": usage["prompt_tokens"],
                "completion_tokens": usage["completion_tokens"],
                "total_tokens": usage["total_tokens"],
                "cost_usd": usage.get("cost_usd") or 0.0,
            },
            "duration_ms": (
                round((run.completed_at - run.started_at) * 1000, 3) if run.completed_at else None
            ),
            "error": run.error,
            "resource_id": _tag(run.request_metadata.get("resource_id")),
            "state_id": _tag(run.request_metadata.get("state_id")),
            "retry_count": 0,
        }
        if run.done:
            result = self._result(run)
            view["response"], view["metadata"] = result["response"], result["metadata"]
        else:
            view["response"] = {"content": run.text, "tool_calls": []}
            view["last_event_id"] = len(run.events)
        if run.done:
            view["feedback"] = [
                {**f, "comment": ERASED} if run.erased and f["comment"] is not None else f
                for f in run.feedback
            ]
            scores = [f["score"] for f in run.feedback]
            view["quality"] = {"mean_score": round(sum(scores) / len(scores), 6) if scores
                               else None, "scored": len(scores)}  # fmt: skip
        if run.erased:  # what the gateway shows once the subject's keys are gone
            view["response"] = {**view["response"], "content": ERASED, "tool_calls": []}
            if run.error is not None:
                view["error"] = {**run.error, "message": ERASED}
            if view.get("metadata") is not None:
                view["metadata"] = {**view["metadata"], "payload_erased": True}
            view["payload"] = "erased"
        return view

    def _run(self, execution_id: str) -> _Execution:
        run = self._executions.get(execution_id)
        if run is None:
            raise _not_found(f"execution {execution_id}")
        return run

    def _list_executions(self, query: dict[str, list[str]]) -> dict[str, Any]:
        def one(name: str) -> str | None:
            return query.get(name, [None])[0]

        try:
            limit = int(one("limit") or 50)
            before = float(one("before")) if one("before") else None
        except ValueError as exc:
            raise _invalid("query", "limit and before must be numbers") from exc
        with self._lock:
            rows = sorted(self._executions.values(), key=lambda r: r.started_at, reverse=True)
            items = [
                self._history(r)
                for r in rows
                if (one("agent_id") is None or r.agent_id == one("agent_id"))
                and (one("status") is None or r.status == one("status"))
                and (one("kind") is None or r.kind == one("kind"))
                and (before is None or r.started_at < before)
            ][:limit]
        next_before = items[-1]["started_at"] if len(items) == limit else None
        return {"executions": items, "next_before": next_before}

    def _emit(self, run: _Execution, event: str, data: dict[str, Any]) -> None:
        with self._changed:
            run.events.append({"id": len(run.events) + 1, "event": event, "data": data})
            self._changed.notify_all()

    def _produce(self, run: _Execution) -> None:
        """Run `run` to its end, emitting its events (a stream's producer, or inline)."""
        reply = run.reply
        self._emit(run, "execution_start", {
            "execution_id": run.id, "agent_id": run.agent_id,
            "model_requested": run.model_requested, "model_resolved": self.model_resolved,
            "provider": self.provider,
        })  # fmt: skip
        pieces = reply.pieces(run.prompt)
        for piece in pieces:
            if reply.delay:
                time.sleep(reply.delay)
            with self._lock:
                if run.cancel_requested or self._closing:
                    return self._finish_cancelled(run)
                run.text += piece
            self._emit(run, "content_chunk", {"execution_id": run.id, "delta": piece})
        with self._lock:
            if run.cancel_requested:
                return self._finish_cancelled(run)
            run.usage = self._usage(run, run.text, len(pieces))
            if run.include_usage:
                self._emit(run, "usage_update", {"execution_id": run.id, **run.usage})
            if reply.error_type:
                run.status, run.completed_at = "failed", time.time()
                message = f"{reply.error_type} (scripted by FakeGateway)"
                run.error = {"type": reply.error_type, "message": message, "execution_id": run.id}
                self._emit(run, "error", dict(run.error))
                return None
            run.status, run.completed_at = "completed", time.time()
            self._emit(run, "execution_complete", self._result(run))
        return None

    def _finish_cancelled(self, run: _Execution) -> None:
        with self._lock:
            if run.done:
                return
            run.status, run.completed_at = "cancelled", time.time()
            run.usage = run.usage or self._usage(run, run.text, len(_words(run.text)))
            message = f"execution {run.id} was cancelled"
            run.error = {"type": "execution_cancelled", "message": message, "execution_id": run.id}
            self._emit(run, "error", dict(run.error))

    def _execute(
        self, h: _Handler, agent_id: str, body: Any, headers: dict[str, str], stream: bool
    ) -> None:
        agent = self._agent(agent_id)
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            raise _invalid("body.prompt", "Field required")
        if not body["prompt"]:
            raise _invalid("body.prompt", "String should have at least 1 character")
        subject = body.get("subject")
        if subject is not None:
            subject = _subject(subject, "body.subject")
        key = headers.get("idempotency-key")
        route = "stream" if stream else "execute"
        with self._lock:
            replayed = self._idempotent.get((route, key)) if key else None
        if replayed is not None and not stream:
            return self._send_json(h, *replayed, {"Idempotent-Replayed": "true", **RATE_HEADERS})
        if replayed is not None:
            run = self._run(replayed[1]["execution_id"])
            return self._serve_stream(h, run, 0, 15.0, first=False)
        run = self._new_run(
            agent_id,
            "agent_execution",
            stream,
            agent["model"],
            body["prompt"],
            body.get("metadata"),
            subject,
            {k: v for k, v in body.items() if k not in ("metadata", "subject", "stream_options")},
        )
        if key:
            with self._lock:
                self._idempotent[(route, key)] = (200, {"execution_id": run.id})
        if not stream:
            self._produce(run)
            if run.error is not None:
                err = _Refusal(
                    STATUSES.get(run.error["type"], 500), run.error["type"], run.error["message"],
                    execution_id=run.id,
                )  # fmt: skip
                raise err
            result = self._result(run)
            if key:
                with self._lock:
                    self._idempotent[(route, key)] = (200, result)
            return self._send_json(h, 200, result, RATE_HEADERS)
        options = body.get("stream_options") or {}
        run.on_disconnect = options.get("on_disconnect") or "cancel"
        run.include_usage = options.get("include_usage", True) is not False
        threading.Thread(target=self._produce, args=(run,), daemon=True).start()
        self._serve_stream(h, run, 0, float(options.get("heartbeat_s") or 15.0), first=True)

    def _resume(
        self, h: _Handler, execution_id: str, headers: dict[str, str], query: dict[str, list[str]]
    ) -> None:
        with self._lock:
            run = self._run(execution_id)
        if not run.stream:
            raise _Refusal(
                409, "conflict", f"execution {execution_id} was not streamed: nothing to resume",
                execution_id=execution_id,
            )  # fmt: skip
        position = headers.get("last-event-id") or query.get("last_event_id", ["0"])[0] or "0"
        if not position.isdigit():
            raise _invalid("Last-Event-ID", "must be a non-negative integer event id")
        heartbeat = float(query.get("heartbeat_s", ["15"])[0])
        if int(position) > len(run.events) and run.done:
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.send_header("Connection", "close")
            h.end_headers()
            error = {
                "type": "resume_unavailable",
                "message": f"no event after {position}: the stream has {len(run.events)}",
                "execution_id": run.id, "details": {"replayable_to": len(run.events)},
            }  # fmt: skip
            h.wfile.write(_frame(None, "error", error))
            return
        self._serve_stream(h, run, int(position), heartbeat, first=False)

    def _serve_stream(
        self, h: _Handler, run: _Execution, position: int, heartbeat_s: float, first: bool
    ) -> None:
        """Send `run`'s events after `position`, live until its terminal event."""
        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("X-Accel-Buffering", "no")
        h.send_header("Connection", "close")
        for name, value in RATE_HEADERS.items():
            h.send_header(name, value)
        h.end_headers()
        cut_after = run.reply.cut_after if first else None
        sent = 0
        quiet_since = time.monotonic()
        try:
            while True:
                with self._changed:
                    while len(run.events) <= position and not self._closing:
                        if run.done and len(run.events) <= position:
                            return
                        if time.monotonic() - quiet_since >= heartbeat_s:
                            break
                        self._changed.wait(0.05)
                    if self._closing:
                        return
                    batch = run.events[position:]
                if not batch:
                    h.wfile.write(b": heartbeat\n\n")
                    h.wfile.flush()
                    quiet_since = time.monotonic()
                    continue
                for event in batch:
                    h.wfile.write(_frame(event["id"], event["event"], event["data"]))
                    h.wfile.flush()
                    position, sent = event["id"], sent + 1
                    quiet_since = time.monotonic()
                    if event["event"] in ("execution_complete", "error"):
                        return
                    if cut_after is not None and sent >= cut_after:
                        if run.on_disconnect == "cancel":  # a drop cancels, as on the gateway
                            with self._lock:
                                run.cancel_requested = True
                        return  # the connection drops here: the client resumes
        except (BrokenPipeError, ConnectionResetError, OSError):
            if run.on_disconnect == "cancel":
                with self._lock:
                    run.cancel_requested = True

    def _cancel(self, execution_id: str) -> dict[str, Any]:
        with self._lock:
            run = self._run(execution_id)
            if run.status == "running" and run.stream:
                run.cancel_requested = True
        deadline = time.monotonic() + 5
        with self._changed:
            while not run.done and time.monotonic() < deadline:
                self._changed.wait(0.05)
            if run.status != "cancelled":
                raise _Refusal(
                    409, "conflict",
                    f"execution {execution_id} is {run.status}, not a running stream: "
                    "only a running streamed execution can be cancelled by id",
                    execution_id=execution_id, details={"status": run.status},
                )  # fmt: skip
            return self._history(run)

    # ---------------------------------------------------------------- feedback

    def _give_feedback(self, execution_id: str, body: Any) -> dict[str, Any]:
        given = _feedback(body)
        with self._lock:
            run = self._run(execution_id)
            if not run.done:
                raise _Refusal(409, "conflict", f"execution {execution_id} is still running")
            item = {"feedback_id": str(uuid.uuid4()), "source": given["source"],
                    "given_at": time.time(), "score": given["score"], "label": given["label"],
                    "comment": given["comment"], "by": "key:fake"}  # fmt: skip
            run.feedback.append(item)
        return {"execution_id": execution_id,
                **{k: item[k] for k in ("feedback_id", "score", "label", "comment", "source",
                                        "by")}}  # fmt: skip

    # ---------------------------------------------------------------- subjects, retention

    def _subject_runs(self, subject: str) -> list[_Execution]:
        """The subject's executions, newest first."""
        runs = [r for r in self._executions.values() if r.subject == subject]
        return sorted(runs, key=lambda r: r.started_at, reverse=True)

    def _subject_view(self, run: _Execution) -> dict[str, Any]:
        """History's view with the request (`input`), as the subject routes show it."""
        request = dict(ERASED_INPUT) if run.erased else dict(run.request)
        return {**self._history(run), "input": request}

    def _list_subject(self, subject: str) -> dict[str, Any]:
        with self._lock:
            rows = [self._subject_view(r) for r in self._subject_runs(subject)]
        return {"subject_ref": self._subject_ref(subject), "executions": rows}

    def _export_subject(self, h: _Handler, subject: str) -> None:
        with self._lock:
            runs = self._subject_runs(subject)
            lines: list[dict[str, Any]] = [
                {"kind": "execution", "data": self._subject_view(r)} for r in runs
            ]
            lines += [
                {"kind": "event", "aggregate_id": r.id, "version": e["id"], "topic": e["event"],
                 "data": dict(ERASED_INPUT) if r.erased else e["data"]}
                for r in runs
                for e in r.events
            ]  # fmt: skip
        data = "".join(json.dumps(line) + "\n" for line in lines).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/x-ndjson")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _erase_subject(self, subject: str) -> dict[str, Any]:
        """Mark the subject's executions erased; one key per hour of start not yet gone."""
        with self._lock:
            runs = self._subject_runs(subject)
            keys = {int(r.started_at // 3600) for r in runs if not r.erased}
            for run in runs:
                run.erased = True
        return {
            "subject_ref": self._subject_ref(subject),
            "executions": len(runs),
            "keys_destroyed": len(keys),
        }

    def _subject_ref(self, subject: str) -> str:
        """The gateway's one-way reference of a subject."""
        return hashlib.sha256(f"{self.tenant_id}\x00{subject}".encode()).hexdigest()[:32]

    def _set_retention(self, retention: dict[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            self._retention = retention
        return {"retention": retention}

    # ---------------------------------------------------------------- models, providers

    def _model_names(self) -> list[str]:
        return [*VIRTUAL_MODELS, self.model_resolved]

    def _models(self, h: _Handler, headers: dict[str, str]) -> None:
        models: list[dict[str, Any]] = [
            {
                "id": name, "kind": "virtual", "source": "platform", "strategy": "balanced",
                "task": None, "description": None, "candidates": [self.model_resolved],
                "resolves_to": self.model_resolved, "fallbacks": [], "skipped": [],
                "provider": self.provider, "capabilities": ["streaming", "tools"],
                "input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0,
                "cached_input_price_per_mtok": None,
            }
            for name in VIRTUAL_MODELS
        ]  # fmt: skip
        models.append({
            "id": self.model_resolved, "kind": "concrete", "provider": self.provider,
            "provider_model": self.model_resolved, "capabilities": ["streaming", "tools"],
            "context_window": 128000, "max_output_tokens": 16384,
            "input_price_per_mtok": 1.0, "output_price_per_mtok": 2.0, "available": True,
            "breaker": "closed",
        })  # fmt: skip
        etag = '"' + str(abs(hash(json.dumps(models, sort_keys=True)))) + '"'
        cache = {"ETag": etag, "Cache-Control": "private, max-age=30"}
        if headers.get("if-none-match") == etag:
            h.send_response(304)
            h.send_header("Content-Length", "0")
            for name, value in cache.items():
                h.send_header(name, value)
            h.end_headers()
            return
        self._send_json(h, 200, {"models": models}, cache)

    def _openai_models(self) -> dict[str, Any]:
        data = [
            {"id": name, "object": "model", "created": 0,
             "owned_by": "circuit-breaker" if name in VIRTUAL_MODELS else self.provider}
            for name in self._model_names()
        ]  # fmt: skip
        return {"object": "list", "data": data}

    def _provider_view(self) -> dict[str, Any]:
        return {
            "id": self.provider, "type": "openai", "base_url": None,
            "models": [{"id": self.model_resolved, "context_window": 128000}],
            "health": {"healthy": True, "breaker": "closed", "error_rate": 0.0,
                       "average_latency_ms": 1.0, "consecutive_failures": 0, "requests": 0,
                       "last_error": None, "last_check": None},
        }  # fmt: skip

    # ---------------------------------------------------------------- /v1/chat/completions

    def _chat_completion(self, h: _Handler, body: Any) -> None:
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise _invalid("body.model", "Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _invalid("body.messages", "Field required")
        model, agent_id = body["model"], None
        if model.startswith("agent:"):
            agent_id = model.removeprefix("agent:")
            model = self._agent(agent_id)["model"]
        user = _subject(body["user"], "body.user") if body.get("user") else None  # "": none
        request = {k: v for k, v in body.items() if k not in ("metadata", "user")}
        run = self._new_run(
            agent_id, "chat_completion", bool(body.get("stream")), model,
            _last_user_text(messages), body.get("metadata"), user, request,
        )  # fmt: skip
        completion_id = "chatcmpl-" + run.id.replace("-", "")
        headers = {
            "x-cb-execution-id": run.id, "x-cb-model-resolved": self.model_resolved,
            "x-cb-provider": self.provider, **RATE_HEADERS,
        }  # fmt: skip
        created = int(run.started_at)
        if not body.get("stream"):
            self._produce(run)
            if run.error is not None:
                raise _Refusal(
                    STATUSES.get(run.error["type"], 500), run.error["type"], run.error["message"],
                    execution_id=run.id,
                )  # fmt: skip
            return self._send_json(h, 200, {
                "id": completion_id, "object": "chat.completion", "created": created,
                "model": self.model_resolved,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": run.text,
                                                     "refusal": None},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": _openai_usage(run.usage), "system_fingerprint": None,
            }, headers)  # fmt: skip
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        head = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                "model": self.model_resolved, "system_fingerprint": None}  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            out: dict[str, Any] = {**head, "choices": [choice]}
            if include_usage:
                out["usage"] = None
            return _data(out)

        h.close_connection = True
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        for name, value in headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(chunk({"role": "assistant", "content": "", "refusal": None}))
        h.wfile.flush()
        self._produce_into(run, lambda piece: h.wfile.write(chunk({"content": piece})))
        if run.error is not None:
            error = {"message": run.error["message"], "type": "server_error", "param": None,
                     "code": run.error["type"]}  # fmt: skip
            h.wfile.write(_data({"error": error}))
            return
        out = chunk({}, "stop")
        if include_usage:
            out += _data({**head, "choices": [], "usage": _openai_usage(run.usage)})
        h.wfile.write(out + b"data: [DONE]\n\n")

    def _produce_into(self, run: _Execution, send: Callable[[str], Any]) -> None:
        """Produce `run` inline, sending each content piece as it comes."""
        seen = 0
        producer = threading.Thread(target=self._produce, args=(run,), daemon=True)
        producer.start()
        while True:
            with self._changed:
                while len(run.events) <= seen and not run.done and not self._closing:
                    self._changed.wait(0.05)
                batch = run.events[seen:]
                seen = len(run.events)
                finished = run.done or self._closing
            for event in batch:
                if event["event"] == "content_chunk":
                    send(event["data"]["delta"])
            if finished and seen == len(run.events):
                producer.join(1)
                return

    # ---------------------------------------------------------------- GraphQL

    def _graphql(self, body: Any, authed: bool) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            raise _invalid("body.query", "Field required")
        try:
            from graphql import graphql_sync
        except ImportError as exc:
            raise _Refusal(
                501, "not_implemented",
                "FakeGateway serves GraphQL with graphql-core: pip install "
                "'circuit-breaker-sdk[testing]'",
            ) from exc  # fmt: skip
        if self._schema is None:
            self._schema = _GraphQLFake.schema(self)
        result = graphql_sync(
            self._schema,
            body["query"],
            variable_values=body.get("variables") or {},
            operation_name=body.get("operationName"),
            context_value={"authed": authed},
        )
        return result.formatted


def _tag(value: Any) -> str | None:
    return None if value is None else str(value)


def _subject(value: Any, loc: str = "path.subject") -> str:
    """A data subject id as the gateway takes it: a string of 1 to 256 characters."""
    if not isinstance(value, str):
        raise _invalid(loc, "Input should be a valid string")
    if not 1 <= len(value) <= 256:
        raise _invalid(loc, "String should have 1 to 256 characters")
    return value


def _retention(body: Any) -> dict[str, Any]:
    """`PUT /api/v1/retention`'s body, checked as the gateway checks it."""
    if not isinstance(body, dict):
        raise _invalid("body", "Input should be a valid dictionary")
    for name in body:
        if name not in ("payload_days", "metrics_days"):
            raise _invalid(f"body.{name}", "Extra inputs are not permitted")
    days: dict[str, Any] = {"payload_days": body.get("payload_days"),
                            "metrics_days": body.get("metrics_days")}  # fmt: skip
    for name, value in days.items():
        if value is None and name == "metrics_days":
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise _invalid(f"body.{name}", "Input should be a valid integer")
        if not 1 <= value <= 36500:
            raise _invalid(f"body.{name}", "Input should be between 1 and 36500")
    if days["metrics_days"] is not None and days["metrics_days"] < days["payload_days"]:
        raise _invalid("body", "metrics_days must be at least payload_days")
    return days


def _feedback(body: Any) -> dict[str, Any]:
    """`POST …/feedback`'s body, checked as the gateway checks it."""
    if not isinstance(body, dict):
        raise _invalid("body", "Input should be a valid dictionary")
    for name in body:
        if name not in ("score", "label", "comment", "source"):
            raise _invalid(f"body.{name}", "Extra inputs are not permitted")
    score = body.get("score")
    if not isinstance(score, (int, float)) or not 0 <= float(score) <= 1:
        raise _invalid("body.score", "score must be in [0, 1] (or a boolean)")
    source = body.get("source", "user")
    if not isinstance(source, str) or not re.fullmatch(r"[A-Za-z0-9_.:-]{1,50}", source):
        raise _invalid("body.source", "String should match pattern '^[A-Za-z0-9_.:-]+$'")
    return {"score": float(score), "label": body.get("label"), "comment": body.get("comment"),
            "source": source}  # fmt: skip


RUBRICS = ("relevance", "correctness", "format")


def _judge(body: Any) -> dict[str, Any]:
    """`PUT /api/v1/judge`'s body, checked as the gateway checks it."""
    if not isinstance(body, dict) or not isinstance(body.get("model"), str) or not body["model"]:
        raise _invalid("body.model", "Field required")
    for name in body:
        if name not in ("model", "rubric", "criteria", "sample_rate"):
            raise _invalid(f"body.{name}", "Extra inputs are not permitted")
    spec = {"model": body["model"], "rubric": body.get("rubric", "relevance"),
            "criteria": body.get("criteria"),
            "sample_rate": body.get("sample_rate", 1.0)}  # fmt: skip
    if spec["rubric"] not in RUBRICS and not spec["criteria"]:
        raise _invalid("body", f"rubric {spec['rubric']!r} is not one of {', '.join(RUBRICS)}")
    rate = spec["sample_rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
        raise _invalid("body.sample_rate", "Input should be between 0 and 1")
    return spec


def _frame(event_id: int | None, event: str, data: dict[str, Any]) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _data(body: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


def _openai_usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
        "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
    }


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # text parts
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


# the legacy input's parameter names, and the REST ones
_GQL_PARAMS = {
    "temperature": "temperature",
    "maxTokens": "max_tokens",
    "topP": "top_p",
    "frequencyPenalty": "frequency_penalty",
    "presencePenalty": "presence_penalty",
}


class _GraphQLFake:
    """The GraphQL half: the packaged schema with resolvers over the fake's state."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw

    @classmethod
    def schema(cls, gw: FakeGateway) -> Any:
        from graphql import GraphQLError, build_schema

        sdl = resources.files("circuit_breaker").joinpath("schema.graphql").read_text("utf-8")
        schema = build_schema(sdl)
        fake = cls(gw)
        for type_name in ("Query", "Mutation"):
            for name, definition in schema.type_map[type_name].fields.items():  # type: ignore[union-attr]
                definition.resolve = fake._resolver(type_name, name, GraphQLError)
        return schema

    def _resolver(self, type_name: str, name: str, error: type[Exception]) -> Any:
        method = getattr(self, f"q_{name}", None)

        def resolve(_source: Any, info: Any, **args: Any) -> Any:
            if name != "health" and not info.context["authed"]:
                raise error(
                    "authentication required", extensions={"code": "UNAUTHENTICATED",
                                                           "type": "authentication_failed"},
                )  # type: ignore[call-arg]  # fmt: skip
            if method is None:
                raise error(f"FakeGateway does not serve {type_name}.{name}")
            try:
                return method(**args)
            except _Refusal as err:
                code = {"invalid_request": "BAD_USER_INPUT", "not_found": "NOT_FOUND"}
                ext = {"code": code.get(err.error_type, err.error_type.upper()),
                       "type": err.error_type}  # fmt: skip
                if err.execution_id:
                    ext["executionId"] = err.execution_id
                raise error(err.message, extensions=ext) from err  # type: ignore[call-arg]

        return resolve

    # ---------------------------------------------------------------- shapes

    def _agent_node(self, a: dict[str, Any]) -> dict[str, Any]:
        gw, params = self.gw, a.get("parameters") or {}
        model = a.get("model") or ""
        base = f"{gw.url}/api/v1"
        virtual = model in VIRTUAL_MODELS or model.startswith("cb:")
        return {
            "id": a["id"], "name": a["name"], "description": a.get("description") or "",
            "llmProvider": {"providerType": a.get("provider_type") or "openai", "model": model,
                            "baseUrl": None},
            "llmConfig": {
                **{gql: params.get(rest) for gql, rest in _GQL_PARAMS.items()},
                "temperature": params.get("temperature", 0.7),
                "stopSequences": [params["stop"]] if isinstance(params.get("stop"), str)
                else list(params.get("stop") or []),
            },
            "prompts": {"system": a.get("system_prompt") or "",
                        "userTemplate": a.get("user_template") or "",
                        "contextInstructions": a.get("context_instructions")},
            "capabilities": a.get("capabilities") or [], "tools": a.get("tools") or [],
            "createdAt": a["created_at"], "updatedAt": a["updated_at"],
            "tenantId": a["tenant_id"], "tenantPermissions": list(SCOPES),
            "executionEndpoints": {
                "execute": f"{base}/agents/{a['id']}/execute",
                "stream": f"{base}/agents/{a['id']}/execute/stream",
                "history": f"{base}/executions?agent_id={a['id']}",
                "resume": f"{base}/executions/{{execution_id}}/stream",
            },
            "streamingConfig": {
                "endpoint": f"{base}/agents/{a['id']}/execute/stream",
                "protocol": "text/event-stream", "eventTypes": list(EVENT_TYPES),
                "heartbeatSeconds": 15.0, "minHeartbeatSeconds": 0.5,
                "maxHeartbeatSeconds": 300.0, "resumable": True, "resumeHeader": "Last-Event-ID",
                "onDisconnectOptions": ["cancel", "continue"], "defaultOnDisconnect": "cancel",
                "includeUsageDefault": True,
            },
            "virtualModelMappings": [{
                "name": model, "kind": "virtual" if virtual else "concrete",
                "source": "platform", "strategy": "balanced" if virtual else None, "task": None,
                "candidates": [gw.model_resolved], "resolvesTo": gw.model_resolved,
                "provider": gw.provider, "fallbacks": [], "capabilities": ["streaming", "tools"],
                "available": True, "unavailableReason": None,
            }],
            "toolConfigurations": [
                {"name": t, "description": "", "source": "builtin", "inputSchema": {},
                 "health": {"status": "ok", "lastError": None}}
                for t in a.get("tools") or []
            ],
            "performanceMetrics": lambda info, window="LAST_24_HOURS": self._metrics(a, window),
            "executionHistory": lambda info, first=20, after=None, status=None: self._history_page(
                a["id"], first, after, status
            ),
        }  # fmt: skip

    def _runs(self, agent_id: str | None = None) -> list[_Execution]:
        with self.gw._lock:
            runs = list(self.gw._executions.values())
        return [r for r in runs if agent_id is None or r.agent_id == agent_id]

    def _metrics(self, a: dict[str, Any], window: str) -> dict[str, Any]:
        runs = [r for r in self._runs(a["id"]) if r.done]
        ok = sum(r.status == "completed" for r in runs)
        usage = [r.usage for r in runs if r.usage]
        blank = {"p50": None, "p95": None, "p99": None, "mean": None}
        return {
            "window": window, "since": _now_iso(), "until": _now_iso(), "executions": len(runs),
            "succeeded": ok, "failed": sum(r.status == "failed" for r in runs),
            "cancelled": sum(r.status == "cancelled" for r in runs),
            "successRate": ok / len(runs) if runs else None, "latencyMs": blank, "ttftMs": blank,
            "promptTokens": sum(u["prompt_tokens"] for u in usage),
            "completionTokens": sum(u["completion_tokens"] for u in usage),
            "totalTokens": sum(u["total_tokens"] for u in usage),
            "costUsd": float(sum(u.get("cost_usd") or 0 for u in usage)),
        }  # fmt: skip

    def _history_page(
        self, agent_id: str, first: int, after: str | None, status: str | None
    ) -> dict[str, Any]:
        runs = sorted(self._runs(agent_id), key=lambda r: r.started_at, reverse=True)
        if status:
            runs = [r for r in runs if r.status == status.lower()]
        start = next((i + 1 for i, r in enumerate(runs) if r.id == after), 0) if after else 0
        page = runs[start : start + first]
        edges = [{"cursor": r.id, "node": self._summary(r)} for r in page]
        return {"edges": edges, "pageInfo": {
            "hasNextPage": start + first < len(runs), "hasPreviousPage": start > 0,
            "startCursor": page[0].id if page else None, "endCursor": page[-1].id if page else None,
        }}  # fmt: skip

    def _summary(self, r: _Execution) -> dict[str, Any]:
        usage = r.usage or {}
        return {
            "id": r.id, "agentId": r.agent_id, "kind": r.kind, "status": r.status.upper(),
            "stream": r.stream, "modelRequested": r.model_requested,
            "modelResolved": self.gw.model_resolved, "provider": self.gw.provider,
            "startedAt": _iso(r.started_at), "completedAt": _iso(r.completed_at),
            "durationMs": (r.completed_at - r.started_at) * 1000 if r.completed_at else None,
            "promptTokens": usage.get("prompt_tokens", 0),
            "completionTokens": usage.get("completion_tokens", 0),
            "totalTokens": usage.get("total_tokens", 0),
            "costUsd": float(usage.get("cost_usd") or 0.0),
            "errorType": (r.error or {}).get("type"),
            "errorMessage": (r.error or {}).get("message"),
        }  # fmt: skip

    def _execution_node(self, r: _Execution) -> dict[str, Any]:
        output = None
        if r.done and r.status == "completed":
            output = {"content": r.text, "finish_reason": "stop", "tool_calls": []}
        return {
            "id": r.id, "agentId": r.agent_id or "",
            "resourceId": _tag(r.request_metadata.get("resource_id")) or "unknown",
            "stateId": _tag(r.request_metadata.get("state_id")) or "unknown",
            "status": r.status.upper(), "inputData": {"prompt": r.prompt}, "outputData": output,
            "errorMessage": (r.error or {}).get("message"), "startedAt": _iso(r.started_at),
            "completedAt": _iso(r.completed_at),
            "durationMs": int((r.completed_at - r.started_at) * 1000) if r.completed_at else None,
            "retryCount": 0,
        }  # fmt: skip

    def _budget(self) -> dict[str, Any]:
        budget = self.gw._budget or {"limit": 100.0, "warningThreshold": 0.8}
        used = float(sum((r.usage or {}).get("cost_usd") or 0 for r in self._runs()))
        limit = float(budget["limit"])
        share = used / limit if limit else 0.0
        return {
            "budgetId": "tenant", "limit": limit, "used": used, "percentageUsed": share * 100,
            "isExhausted": used >= limit, "isWarning": share >= budget["warningThreshold"],
            "remaining": max(0.0, limit - used), "message": f"{used:.6f} of {limit} USD used",
        }  # fmt: skip

    # ---------------------------------------------------------------- Query

    def q_health(self) -> str:
        return "ok"

    def q_agents(self) -> list[dict[str, Any]]:
        return [self._agent_node(a) for a in self.gw.agents]

    def q_agent(self, id: str) -> dict[str, Any] | None:  # noqa: A002
        with self.gw._lock:
            agent = self.gw._agents.get(id)
        return None if agent is None else self._agent_node(dict(agent))

    def q_agentList(
        self,
        filter: dict[str, Any] | None = None,  # noqa: A002
        first: int = 50,
        after: str | None = None,
    ) -> dict[str, Any]:
        f = filter or {}
        agents = [
            a
            for a in self.gw.agents
            if (not f.get("name") or f["name"].lower() in a["name"].lower())
            and (not f.get("model") or a["model"] == f["model"])
            and (not f.get("tag") or f["tag"] in a["tags"])
            and (not f.get("capability") or f["capability"] in a["capabilities"])
            and (not f.get("tool") or f["tool"] in a["tools"])
        ]
        start = next((i + 1 for i, a in enumerate(agents) if a["id"] == after), 0) if after else 0
        page = agents[start : start + first]
        return {
            "totalCount": len(agents),
            "edges": [{"cursor": a["id"], "node": self._agent_node(a)} for a in page],
            "pageInfo": {"hasNextPage": start + first < len(agents), "hasPreviousPage": start > 0,
                         "startCursor": page[0]["id"] if page else None,
                         "endCursor": page[-1]["id"] if page else None},
        }  # fmt: skip

    def q_agentExecution(self, id: str) -> dict[str, Any] | None:  # noqa: A002
        with self.gw._lock:
            run = self.gw._executions.get(id)
        return None if run is None else self._execution_node(run)

    def q_resourceExecutions(self, resourceId: str) -> list[dict[str, Any]]:
        runs = [
            r for r in self._runs() if _tag(r.request_metadata.get("resource_id")) == resourceId
        ]
        return [self._execution_node(r) for r in sorted(runs, key=lambda r: -r.started_at)]

    def q_tools(self) -> list[Any]:
        return []

    def q_mcpServers(self) -> list[Any]:
        return []

    def q_deprecatedUsage(self) -> list[Any]:
        return []

    def q_llmProviders(self) -> list[dict[str, Any]]:
        gw, now = self.gw, _now_iso()
        model = {
            "id": gw.model_resolved, "name": gw.model_resolved, "maxTokens": 16384,
            "contextWindow": 128000, "costPerInputToken": 1e-6, "costPerOutputToken": 2e-6,
            "supportsStreaming": True, "supportsFunctionCalling": True,
            "capabilities": ["streaming", "tools"],
        }  # fmt: skip
        return [{
            "id": gw.provider, "providerType": "openai", "name": gw.provider,
            "baseUrl": "http://fake.invalid", "models": [model], "createdAt": now, "updatedAt": now,
            "healthStatus": {"isHealthy": True, "lastCheck": now, "errorRate": 0.0,
                             "averageLatencyMs": 1, "consecutiveFailures": 0, "lastError": None},
        }]  # fmt: skip

    def q_budgetStatus(
        self, userId: str | None = None, projectId: str | None = None
    ) -> dict[str, Any]:
        return self._budget()

    def q_costAnalytics(self, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        usage = [r.usage for r in self._runs() if r.usage]
        cost = float(sum(u.get("cost_usd") or 0 for u in usage))
        tokens = sum(u["total_tokens"] for u in usage)
        return {
            "totalCost": cost, "totalTokens": tokens,
            "averageCostPerToken": cost / tokens if tokens else 0.0,
            "providerBreakdown": {self.gw.provider: cost},
            "modelBreakdown": {self.gw.model_resolved: cost}, "dailyCosts": {},
            "periodStart": input["startDate"], "periodEnd": input["endDate"],
        }  # fmt: skip

    # ---------------------------------------------------------------- Mutation

    def q_createAgent(self, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        config, prompts = input.get("llmConfig") or {}, input.get("prompts") or {}
        names = _GQL_PARAMS
        parameters = {names[k]: v for k, v in config.items() if k in names and v is not None}
        if config.get("stopSequences"):
            parameters["stop"] = config["stopSequences"]
        agent = self.gw._new_agent({
            "name": input["name"], "description": input.get("description"),
            "model": (input.get("llmProvider") or {}).get("model"),
            "system_prompt": prompts.get("system"), "user_template": prompts.get("userTemplate"),
            "context_instructions": prompts.get("contextInstructions"),
            "parameters": parameters, "capabilities": input.get("capabilities"),
            "tools": input.get("tools"),
        })  # fmt: skip
        return self._agent_node(agent)

    def q_updateAgent(self, id: str, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        names = {"systemPrompt": "system_prompt", "userTemplate": "user_template",
                 "contextInstructions": "context_instructions"}  # fmt: skip
        params = _GQL_PARAMS
        changes = {names.get(k, k): v for k, v in input.items() if k != "parameters"}
        if input.get("parameters"):
            changes["parameters"] = {
                params.get(k, k): v for k, v in input["parameters"].items() if v is not None
            }
        return self._agent_node(self.gw._update_agent(id, changes))

    def q_deleteAgent(self, id: str) -> dict[str, Any]:  # noqa: A002
        self.gw._delete_agent(id)
        return {"success": True, "id": id}

    def q_llmChatCompletion(self, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        gw, model, agent_id = self.gw, input["model"], None
        if model.startswith("agent:"):
            agent_id = model.removeprefix("agent:")
            model = gw._agent(agent_id)["model"]
        user = input.get("user")
        run = gw._new_run(
            agent_id, "chat_completion", False, model, _last_user_text(input["messages"]), None,
            _subject(user, "user") if user else None, {"messages": input["messages"]},
        )  # fmt: skip
        gw._produce(run)
        if run.error is not None:
            raise _Refusal(
                STATUSES.get(run.error["type"], 500), run.error["type"], run.error["message"],
                execution_id=run.id,
            )  # fmt: skip
        usage = run.usage
        return {
            "id": run.id, "model": gw.model_resolved, "provider": gw.provider,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": run.text,
                                                 "name": None}, "finishReason": "stop"}],
            "usage": {"promptTokens": usage["prompt_tokens"],
                      "completionTokens": usage["completion_tokens"],
                      "totalTokens": usage["total_tokens"],
                      "estimatedCost": float(usage.get("cost_usd") or 0.0)},
            "routingInfo": {"selectedProvider": gw.provider, "routingStrategy": "balanced",
                            "latencyMs": 1, "retryCount": 0, "fallbackUsed": False},
        }  # fmt: skip

    def q_setBudget(self, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        self.gw._budget = {"limit": input["limit"], "warningThreshold": input["warningThreshold"]}
        return self._budget()
