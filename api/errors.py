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
from api.responses import door_path, error_response, plain_error
from api.runtime import runtime_of
from domain.errors import AuthenticationFailed, CBError, PayloadTooLarge

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
    return error_response(err, door_path(request.scope))


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
    return plain_error(
        door_path(request.scope), "invalid_request", text, 400, param, details=problems
    )


async def on_http(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, HTTPException)
    if TOO_LARGE in request.scope:
        limit = request.scope[TOO_LARGE]
        too_large = PayloadTooLarge(f"the request body is over {limit} bytes")
        return error_response(too_large, door_path(request.scope))
    kinds = {400: "invalid_request", 404: "not_found", 405: "method_not_allowed",
             413: "payload_too_large"}  # fmt: skip
    kind = kinds.get(err.status_code, "http_error")
    return plain_error(door_path(request.scope), kind, str(err.detail), err.status_code)


async def on_unexpected(request: Request, err: Exception) -> JSONResponse:
    log.error("unhandled %s", type(err).__name__, exc_info=err)
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
