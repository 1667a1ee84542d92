"""JSON error bodies: `{"error": {"type", "message", …}}` with the right status and headers.

The handlers are module-level so Ray pickles the app by reference to them.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api import security_log
from api.auth import TENANT_ID
from domain.errors import AuthenticationFailed, CBError

log = logging.getLogger(__name__)


def error_response(err: CBError) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(err.details, dict) and isinstance(err.details.get("headers"), dict):
        headers.update(err.details["headers"])  # X-RateLimit-* of a limit refusal
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(err.retry_after + 0.499)))
    body: dict[str, object] = {"error": err.to_dict()}
    if err.execution_id:
        body["execution_id"] = err.execution_id
    return JSONResponse(body, status_code=err.status, headers=headers)


async def on_cb_error(request: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, CBError)
    entries = err.audit
    if entries is None and isinstance(err, AuthenticationFailed):  # no or malformed key
        tenant = request.headers.get("x-tenant-id")
        entries = [{"kind": "authentication_failed", "tenant_id": tenant, "actor": None,
                    "detail": {"reason": "missing or invalid credential"}}]  # fmt: skip
    if entries:
        entries = [e for e in entries if e.get("tenant_id") and TENANT_ID.match(e["tenant_id"])]
        client = request.client.host if request.client else None
        security_log.note(entries, client, request.method, request.url.path)
    return error_response(err)


async def on_invalid(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, RequestValidationError)
    problems = [
        {"loc": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in err.errors()
    ]
    text = "; ".join(f"{p['loc']}: {p['message']}" for p in problems)
    body = {"error": {"type": "invalid_request", "message": text, "details": problems}}
    return JSONResponse(body, status_code=400)


async def on_http(_: Request, err: Exception) -> JSONResponse:
    assert isinstance(err, HTTPException)
    kind = {404: "not_found", 405: "method_not_allowed"}.get(err.status_code, "http_error")
    body = {"error": {"type": kind, "message": str(err.detail)}}
    return JSONResponse(body, status_code=err.status_code)


async def on_unexpected(_: Request, err: Exception) -> JSONResponse:
    log.error("unhandled %s", type(err).__name__, exc_info=err)
    body = {"error": {"type": "internal_error", "message": "internal error"}}
    return JSONResponse(body, status_code=500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(CBError, on_cb_error)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
