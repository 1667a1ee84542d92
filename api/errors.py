"""The app's error handlers: every failure is a JSON body `{"error": {"type", "message", …}}`
with the right status and headers (`api.responses`), and refusals go to the audit trail.

The handlers are module-level so Ray pickles the app by reference to them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.ids import UUID_PATTERN, client_of
from api.request_metrics import note_error
from api.responses import door_path, error_response, plain_error
from api.runtime import runtime_of
from domain.errors import AuthenticationFailed, CBError, PayloadTooLarge, category_of
from domain.trace_context import EXECUTION_ID

log = logging.getLogger(__name__)
TOO_LARGE = "cb.body_too_large"  # scope key: the body passed the limit while being read


async def on_cb_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, CBError)
    entries = err.audit
    if entries is None and isinstance(err, AuthenticationFailed):  # no or malformed key
        tenant = request.headers.get("x-tenant-id")
        entries = [{"kind": "authentication_failed", "tenant_id": tenant, "actor": None,
                    "detail": {"reason": "missing or invalid credential"}}]  # fmt: skip
    if entries:
        audit_refusal(request, entries)
    note_error(request.scope, err)
    log_error(request, err.type, err.status, category_of(err), err.execution_id)
    return error_response(err, door_path(request.scope))


def log_error(
    request: Request,
    kind: str,
    status: int,
    category: str,
    execution_id: str | None,
    exc: BaseException | None = None,
) -> None:
    """One log line per error answer: a 5xx at error level (warning when a provider is to
    blame) with its execution id, a 4xx at debug only (refusals are routine). Never the
    error's message: a provider's may quote the request."""
    if status < 500 and not log.isEnabledFor(logging.DEBUG):
        return
    level = logging.DEBUG if status < 500 else logging.WARNING
    if category == "internal" and status >= 500:
        level = logging.ERROR
    route = getattr(request.scope.get("route"), "path", None) or request.url.path
    tenant = request.headers.get("x-tenant-id", "")
    execution_id = execution_id or EXECUTION_ID.get()
    log.log(
        level,
        "%s %s %s %s (%s%s)",
        status, kind, request.method, route, type(exc).__name__ if exc else category,
        f", execution {execution_id}" if execution_id else "",
        exc_info=exc,
        extra={
            "error_type": kind,
            "error_category": category,
            "status": status,
            "method": request.method,
            "route": route,
            "execution_id": execution_id,
            "tenant_id": tenant if UUID_PATTERN.match(tenant) else None,
        },
    )  # fmt: skip


def audit_refusal(request: Request, entries: list[dict[str, Any]]) -> None:
    """Queue a refusal's audit entries (those naming a well-formed tenant id)."""
    entries = [e for e in entries if e.get("tenant_id") and UUID_PATTERN.match(e["tenant_id"])]
    runtime_of(request).security_log.note(
        entries, client_of(request), request.method, request.url.path
    )


async def on_invalid(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    problems = [
        {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()
    ]
    text = "; ".join(f"{p['loc']}: {p['message']}" for p in problems)
    param = problems[0]["loc"].removeprefix("body.") if problems else None
    note_error(request.scope, "invalid_request", 400)
    return plain_error(
        door_path(request.scope), "invalid_request", text, 400, param, details=problems
    )


async def on_http(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, HTTPException)
    if TOO_LARGE in request.scope:
        limit = request.scope[TOO_LARGE]
        too_large = PayloadTooLarge(f"the request body is over {limit} bytes")
        note_error(request.scope, too_large)
        return error_response(too_large, door_path(request.scope))
    kinds = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
             413: "payload_too_large"}  # fmt: skip
    kind = kinds.get(err.status_code, "http_error")
    note_error(request.scope, kind, err.status_code)
    category = "client" if err.status_code < 500 else "internal"
    log_error(request, kind, err.status_code, category, None)
    return plain_error(door_path(request.scope), kind, str(err.detail), err.status_code)


async def on_unexpected(request: Request, err: Exception) -> JSONResponse:
    log_error(request, "internal_error", 500, "internal", None, err)
    note_error(request.scope, "internal_error", 500)
    return plain_error(door_path(request.scope), "internal_error", "internal error", 500)


class BodyLimit:
    """A request body over `limit` bytes is a JSON 413: at once when its length is declared,
    as soon as the limit is passed when it is chunked."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await error_response(self._too_large())(scope, receive, send)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                scope[TOO_LARGE] = self.limit  # FastAPI turns what a body read raises into 400
                raise self._too_large()
            return message

        await self.app(scope, counted, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is over {self.limit} bytes")


def install(app: FastAPI) -> None:
    app.add_exception_handler(CBError, on_cb_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
