"""The ingress's own metrics: requests by route template and status, refusals by error type
and category, and this replica's gauges (slots, queue, limit, open streams)."""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors.metrics import RECORDER
from domain.errors import CBError, category_of

ERROR = "cb.error"  # scope key: (type, category) of the error this request was answered with
TENANT = "cb.tenant"  # scope key: the authenticated tenant
OPEN_STREAMS = [0]  # SSE streams this replica is sending now


def note_error(scope: MutableMapping[str, Any], err: CBError | str, status: int = 500) -> None:
    """Say which error answers the request (a CBError, or a plain error's type)."""
    if isinstance(err, CBError):
        scope[ERROR] = (err.type, category_of(err))
    else:
        scope[ERROR] = (err, "internal" if status >= 500 else "client")


def note_tenant(scope: MutableMapping[str, Any], tenant_id: str) -> None:
    scope[TENANT] = tenant_id


class RequestMetrics:
    """Counts every HTTP request once it is answered; times it to its response's start."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                RECORDER.observe("cb_http_request_duration_seconds",
                                 time.perf_counter() - started, _route(scope))  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route, method = _route(scope)
            RECORDER.inc("cb_http_requests_total", (route, method, str(status)))
            if status >= 400:
                kind, category = scope.get(ERROR) or (
                    f"http_{status}",
                    "internal" if status >= 500 else "client",
                )
                RECORDER.inc("cb_refusals_total", (kind, category), tenant=scope.get(TENANT))


def _route(scope: Scope) -> tuple[str, str]:
    """The matched route's template (never the raw path: ids would explode the series)."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched", scope.get("method", "")
