"""The ingress's part of a trace: a SERVER span per HTTP request (`actors.tracing`).

With tracing on, each request gets a span continuing its `traceparent` (W3C), named
"METHOD /route/template" once the route is known, with the HTTP attributes, the status
code, and an error status on a 5xx. Its trace id is the request's `TRACE_ID` (error bodies
and log lines show it). With tracing off, a valid incoming `traceparent` is only passed on
to the execution (and its trace id kept in `TRACE_ID`): no span, no id is made.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors import tracing
from domain.trace_context import TRACE_ID, trace_id_of


class TraceRequests:
    """The outermost middleware: one SERVER span per HTTP request when tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == b"traceparent":
                incoming = value.decode("latin-1")
                break
        if not tracing.enabled():
            # set for every request, so nothing of one request's is left for the next
            trace_id = trace_id_of(incoming)
            TRACE_ID.set(trace_id)
            tracing.PASS_ON.set(incoming if trace_id else None)
            await self.app(scope, receive, send)
            return
        await self._traced(scope, receive, send, incoming)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, incoming: str | None
    ) -> None:
        method = scope["method"]
        attributes = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        span = tracing.start_server(method, incoming if trace_id_of(incoming) else None, attributes)
        TRACE_ID.set(f"{span.get_span_context().trace_id:032x}")
        tracing.PASS_ON.set(None)
        status: int | None = None
        failure: BaseException | None = None

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            with tracing.current(span):
                await self.app(scope, receive, sending)
        except BaseException as exc:
            failure = exc
            raise
        finally:
            template = getattr(scope.get("route"), "path", None)
            if template:
                span.set_attribute("http.route", template)
                span.update_name(f"{method} {template}")
            if status is None and not isinstance(failure, asyncio.CancelledError | None):
                status = 500  # what the server's error handler answers
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if status is not None and status >= 500:
                kind = type(failure).__qualname__ if failure is not None else str(status)
                tracing.server_failed(span, kind)
            span.end()
