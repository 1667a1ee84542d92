"""What the sync and async clients share: configuration, the description of one operation
(`Call`, with its GraphQL equivalent when the schema has one), and the decisions of the
retry and failover loop as pure functions; `_sync.py` and `_async.py` only do the I/O."""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import httpx

from circuit_breaker._retry import (
    RetryPolicy,
    never_sent,
    retryable_exception,
    retryable_status,
)
from circuit_breaker.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    CircuitBreakerError,
    NoModelAvailableError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    error_from_graphql,
    error_from_response,
)

T = TypeVar("T")
Mode = Literal["auto", "rest", "graphql"]
ApiKey = str | Callable[[], str]

VERSION = "0.1.0"
DEFAULT_TIMEOUT = 60.0


@dataclass
class Config:
    """A client's settings, with the environment's defaults (`CB_BASE_URL`, `CB_TENANT_ID`,
    `CB_API_KEY`)."""

    base_url: str
    tenant_id: str | None
    api_key: ApiKey | None
    timeout: float
    retry: RetryPolicy
    mode: Mode
    failover_cooldown: float
    headers: dict[str, str]
    # the TLS context of https/wss calls: None for the default trust store
    ssl_context: ssl.SSLContext | None = None

    @classmethod
    def build(
        cls,
        base_url: str | None,
        tenant_id: str | None,
        api_key: ApiKey | None,
        timeout: float | None,
        max_retries: int | None,
        mode: Mode,
        failover_cooldown: float,
        headers: dict[str, str] | None,
    ) -> Config:
        base = base_url or os.environ.get("CB_BASE_URL") or "http://localhost:8000"
        if mode not in ("auto", "rest", "graphql"):
            raise ValueError(f"mode must be 'auto', 'rest' or 'graphql', not {mode!r}")
        return cls(
            base_url=base.rstrip("/"),
            tenant_id=tenant_id or os.environ.get("CB_TENANT_ID"),
            api_key=api_key if api_key is not None else os.environ.get("CB_API_KEY"),
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            retry=RetryPolicy(max_retries=2 if max_retries is None else max_retries),
            mode=mode,
            failover_cooldown=failover_cooldown,
            headers=dict(headers or {}),
        )

    def ws_ssl(self) -> dict[str, Any]:
        """The `ssl` argument of a WebSocket connection (only for wss://, with a context)."""
        if self.ssl_context is None or not self.base_url.startswith("https"):
            return {}
        return {"ssl": self.ssl_context}

    def auth_headers(self) -> dict[str, str]:
        """Tenant and bearer headers; a callable key is called for each request (a fresh JWT)."""
        out = {"User-Agent": f"circuit-breaker-sdk-python/{VERSION}", **self.headers}
        if self.tenant_id:
            out["X-Tenant-ID"] = self.tenant_id
        key = self.api_key() if callable(self.api_key) else self.api_key
        if key:
            out["Authorization"] = f"Bearer {key}"
        return out


def tls_context(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext | None:
    """The TLS context `verify` stands for: a context as given, a CA file's (PEM) context,
    None for True (the default trust store). False (no verification) is refused."""
    if verify is False:
        raise ValueError("verify=False is refused: pass the CA file that signed the gateway")
    if verify is True:
        return None
    if isinstance(verify, str | os.PathLike):
        return ssl.create_default_context(cafile=os.fspath(verify))
    return verify


@dataclass
class GQLCall(Generic[T]):
    """The GraphQL equivalent of an operation: a document, its variables, and how to read
    the answer's `data` into the operation's result."""

    query: str
    variables: dict[str, Any]
    parse: Callable[[dict[str, Any]], T]


@dataclass
class Call(Generic[T]):
    """One REST operation: method, path, body, and how to read the answer (an
    `httpx.Response` with a 2xx or 304 status)."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    idempotent: bool | None = None
    graphql: GQLCall[T] | None = None

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method.upper() in ("GET", "HEAD", "PUT", "DELETE", "OPTIONS")

    def clean_params(self) -> dict[str, Any] | None:
        if not self.params:
            return None
        return {k: v for k, v in self.params.items() if v is not None}


class Failover:
    """Which surface serves the operations both offer. In `auto`, REST first; a REST that
    is unreachable or answers 5xx moves them to GraphQL, which serves until
    `cooldown` seconds have passed (then REST is tried again) or itself fails (then back)."""

    def __init__(self, pinned: Mode, cooldown: float) -> None:
        self.pinned = pinned
        self.cooldown = cooldown
        self.current: Literal["rest", "graphql"] = "graphql" if pinned == "graphql" else "rest"
        self._since = 0.0
        self.switches: list[tuple[str, str]] = []  # (surface, why), newest last

    def surface_for(self, call: Call[Any]) -> Literal["rest", "graphql"]:
        if call.graphql is None:
            return "rest"
        if self.pinned != "auto":
            return "graphql" if self.pinned == "graphql" else "rest"
        if self.current == "graphql" and time.monotonic() - self._since >= self.cooldown:
            return "rest"  # try to come back
        return self.current

    def can_switch(self, call: Call[Any]) -> bool:
        return self.pinned == "auto" and call.graphql is not None

    def use(self, surface: Literal["rest", "graphql"], why: str = "") -> None:
        if surface != self.current:
            self.switches.append((surface, why))
        if surface == "graphql" and (surface != self.current or why):
            self._since = time.monotonic()
        self.current = surface


class SurfaceDown(CircuitBreakerError):
    """A surface was unreachable or answered 5xx; `safe` says whether the operation may be
    sent to the other surface (it cannot have run)."""

    def __init__(self, error: CircuitBreakerError, safe: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.safe = safe


_OUTCOME_TYPES = (ProviderError, NoModelAvailableError)


def surface_down_status(error: APIError) -> bool:
    """A 5xx that says the surface is down, not how an execution ended (no execution id,
    not a provider's failure, which the other surface would meet too)."""
    return (
        (error.status or 0) >= 500
        and error.execution_id is None
        and not isinstance(error, _OUTCOME_TYPES)
    )


def wrap_transport_error(exc: httpx.TransportError) -> APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"timed out: {exc!r}")
    return APIConnectionError(f"connection failed: {exc!r}")


@dataclass
class Step:
    """What the loop does after one attempt: return `value`, sleep `wait` and retry, or
    raise `error` (a `SurfaceDown` may send the operation to the other surface)."""

    value: Any = None
    error: BaseException | None = None
    wait: float | None = None
    done: bool = False


def rest_step(
    call: Call[Any],
    reply: httpx.Response | None,
    exc: BaseException | None,
    attempt: int,
    policy: RetryPolicy,
    switchable: bool,
) -> Step:
    """Decide after one REST attempt (`reply` or `exc`)."""
    if exc is not None:
        if not isinstance(exc, httpx.TransportError):
            return Step(error=exc)
        error = wrap_transport_error(exc)
        if switchable:
            return Step(error=SurfaceDown(error, call.is_idempotent or never_sent(exc)))
        if attempt < policy.max_retries and retryable_exception(exc, call.is_idempotent):
            return Step(wait=policy.wait(attempt))
        return Step(error=error)
    assert reply is not None
    if reply.status_code < 400 or reply.status_code == 304:
        return Step(value=call.parse(reply), done=True)
    error = api_error(reply)
    if switchable and surface_down_status(error):
        return Step(error=SurfaceDown(error, True))
    if attempt < policy.max_retries and retryable_status(
        reply.status_code, call.is_idempotent, error.execution_id
    ):
        return Step(wait=policy.wait(attempt, error.retry_after))
    return Step(error=error)


def graphql_step(
    call: Call[Any],
    reply: httpx.Response | None,
    exc: BaseException | None,
    attempt: int,
    policy: RetryPolicy,
    switchable: bool,
) -> Step:
    """Decide after one GraphQL attempt."""
    assert call.graphql is not None
    if exc is not None:
        if not isinstance(exc, httpx.TransportError):
            return Step(error=exc)
        error = wrap_transport_error(exc)
        if switchable:
            return Step(error=SurfaceDown(error, call.is_idempotent or never_sent(exc)))
        if attempt < policy.max_retries and retryable_exception(exc, call.is_idempotent):
            return Step(wait=policy.wait(attempt))
        return Step(error=error)
    assert reply is not None
    if reply.status_code >= 400:
        error = api_error(reply)
        if switchable and surface_down_status(error):
            return Step(error=SurfaceDown(error, True))
        if attempt < policy.max_retries and retryable_status(
            reply.status_code, call.is_idempotent, error.execution_id
        ):
            return Step(wait=policy.wait(attempt, error.retry_after))
        return Step(error=error)
    body = reply.json()
    if body.get("errors"):
        gql_error = error_from_graphql(body["errors"])
        if (
            isinstance(gql_error, RateLimitError | OverloadedError)
            and gql_error.execution_id is None
            and attempt < policy.max_retries
        ):
            return Step(wait=policy.wait(attempt, gql_error.retry_after))
        return Step(error=gql_error)
    return Step(value=call.graphql.parse(body.get("data") or {}), done=True)


def api_error(reply: httpx.Response) -> APIError:
    """The typed exception of an error answer."""
    try:
        body: Any = reply.json()
    except ValueError:
        body = None
    return error_from_response(reply.status_code, dict(reply.headers), body, reply.text)


def json_body(reply: httpx.Response) -> Any:
    return reply.json()
