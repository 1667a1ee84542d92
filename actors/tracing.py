"""This process's OpenTelemetry traces, exported over OTLP/HTTP to `Settings.otlp_endpoint`.

Off unless the endpoint is set: then no tracer provider exists, the SDK is never imported,
and every helper below answers at once after one check of `_tracer` (no span objects, no
ids). On, each process with work to trace (an ingress replica, a tenant actor) calls
`setup` once and exports its own spans in batches:

    SERVER  "POST /api/v1/agents/{agent_id}/execute"    the ingress (api/traces.py)
      INTERNAL "execute agent_execution"                the tenant actor's execution
        CLIENT "chat gpt-4o-mini"                       one per provider attempt
        INTERNAL "execute_tool get-sum"                 one per tool call
          CLIENT "tools/call get-sum"                   one per MCP request

A `traceparent` travels with the execution from the ingress to the tenant actor (an
argument of the call) and on to providers (a header) and MCP servers (`params._meta`, and a
header over HTTP). With tracing off, an incoming `traceparent` is passed on unchanged
(`PASS_ON`), so a caller's trace still reaches the provider and the execution's metadata.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from actors.settings import Settings
from domain.metric_families import GENAI_PROVIDER
from domain.trace_context import trace_id_of

# OpenTelemetry is imported only once tracing is on (its API alone costs a process ~80 ms
# to import): below, only code that runs with `_tracer` set imports it
if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from domain.config import ProviderSpec
    from domain.llm import LLMResponse, StreamChunk, Usage

SERVICE = "circuit-breaker"
EXPORT_DELAY_MS = 1000  # how long a span may wait for its batch (OTEL_BSP_SCHEDULE_DELAY wins)

_tracer: Tracer | None = None
_provider: TracerProvider | None = None
_NOOP = contextlib.nullcontext()
# the incoming `traceparent` passed on by the work in hand, while tracing is off
PASS_ON: ContextVar[str | None] = ContextVar("cb_pass_on_traceparent", default=None)


def setup(settings: Settings, role: str) -> bool:
    """Start exporting this process's spans if `settings.otlp_endpoint` is set (once per
    process; `role` names the process: "ingress", "tenant-actor"). Whether tracing is on."""
    global _tracer, _provider
    if _tracer is not None or not settings.otlp_endpoint:
        return _tracer is not None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create(
        {
            "service.name": SERVICE,
            "service.instance.id": f"{role}:{socket.gethostname()}:{os.getpid()}",
            "cb.process.role": role,
            "cb.instance": settings.instance,
        }
    )
    provider = TracerProvider(resource=resource)
    delay = None if os.environ.get("OTEL_BSP_SCHEDULE_DELAY") else EXPORT_DELAY_MS
    exporter = OTLPSpanExporter(endpoint=traces_url(settings.otlp_endpoint))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=delay))
    _provider, _tracer = provider, provider.get_tracer("circuit-breaker")
    return True


def traces_url(endpoint: str) -> str:
    """`OTEL_EXPORTER_OTLP_ENDPOINT` is a base URL: traces go to its `/v1/traces`."""
    return endpoint.rstrip("/") + "/v1/traces"


def enabled() -> bool:
    return _tracer is not None


def flush(timeout_s: float = 2.0) -> None:
    """Export what is pending now (a process about to exit)."""
    if _provider is not None:
        _provider.force_flush(int(timeout_s * 1000))


def traceparent_of(span: Span) -> str:
    """The W3C `traceparent` naming `span` as the parent of a remote call."""
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def trace_id_hex(span: Span | None, traceparent: str | None = None) -> str | None:
    """The trace the work belongs to: `span`'s, or with tracing off the incoming one's."""
    if span is None:
        return trace_id_of(traceparent)
    return f"{span.get_span_context().trace_id:032x}"


def outgoing() -> str | None:
    """The `traceparent` an outgoing call of the work in hand carries: the current span's
    with tracing on, else the incoming one passed on (or None)."""
    if _tracer is None:
        return PASS_ON.get()
    from opentelemetry import trace

    span = trace.get_current_span()
    return traceparent_of(span) if span.get_span_context().is_valid else None


def traceparent_for(span: Span | None) -> str | None:
    """What a call sends (a provider attempt, an MCP request): its own span's context, or
    with tracing off the one passed on."""
    return PASS_ON.get() if span is None else traceparent_of(span)


# the ingress's server span (api/traces.py)


def start_server(method: str, traceparent: str | None, attributes: dict[str, Any]) -> Span:
    """A SERVER span for one HTTP request, continuing `traceparent` when it is valid."""
    from opentelemetry.trace import SpanKind

    assert _tracer is not None
    return _tracer.start_span(method, _remote(traceparent), SpanKind.SERVER, attributes)


def server_failed(span: Span, error_type: str) -> None:
    """Mark a SERVER span failed (a 5xx answer, or none)."""
    _error(span, error_type)


@contextlib.contextmanager
def current(span: Span) -> Iterator[None]:
    """`span` is the current span inside the block (of this task and those it starts)."""
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        context.detach(token)


def _remote(traceparent: str | None) -> Context | None:
    """The context of a caller's `traceparent` (None: the span starts a trace)."""
    if not traceparent:
        return None
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    return TraceContextTextMapPropagator().extract({"traceparent": traceparent})


# the tenant actor's execution span


def start_execution(
    traceparent: str | None,
    tenant_id: str,
    execution_id: str,
    kind: str,
    agent_id: str,
    model: str,
    stream: bool,
) -> Span | None:
    """The INTERNAL span of one execution, child of the caller's `traceparent` (None: off)."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    attributes = {
        "cb.tenant.id": tenant_id,
        "cb.execution.id": execution_id,
        "cb.execution.kind": kind,
        "cb.execution.stream": stream,
        "cb.model.requested": model,
    }
    if agent_id:
        attributes["gen_ai.agent.id"] = agent_id
    return _tracer.start_span(
        f"execute {kind}", _remote(traceparent), SpanKind.INTERNAL, attributes
    )


def running(span: Span | None, execution: Any, passed_on: str | None) -> Any:
    """The context the execution's loop runs in: its span current, and ended on the way out
    with the execution's status (an error if it failed or raised); with tracing off, the
    incoming `passed_on` traceparent passed on to its calls."""
    if span is not None:
        return _Running(span, execution)
    return _PassOn(passed_on) if passed_on else _NOOP


def end(span: Span | None, error: BaseException | None = None) -> None:
    """End a span that never ran its loop (its start failed with `error`)."""
    if span is None or not span.is_recording():
        return
    if error is not None:
        _error(span, _error_type(error))
    span.end()


class _Current:
    """`span` current for the block; ended on the way out (an error if the block raised)."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.token: object = None

    def __enter__(self) -> Span:
        self.token = _attach(self.span)
        return self.span

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _: Any) -> None:
        _detach(self.token)
        self._finish(exc)

    def _finish(self, exc: BaseException | None) -> None:
        if exc is not None:
            _error(self.span, _error_type(exc))
        self.span.end()


class _Running(_Current):
    """An execution's span: ended with the execution's status and model."""

    def __init__(self, span: Span, execution: Any) -> None:
        super().__init__(span)
        self.execution = execution

    def _finish(self, exc: BaseException | None) -> None:
        span, execution = self.span, self.execution
        if not span.is_recording():
            return
        span.set_attribute("cb.execution.status", execution.status)
        if execution.model_resolved:
            span.set_attribute("gen_ai.response.model", execution.model_resolved)
        error = execution.outcome.error
        if execution.status == "failed" and error is not None:
            _error(span, error.type)
        elif exc is not None and execution.status != "cancelled":
            _error(span, _error_type(exc))
        span.end()


class _PassOn:
    def __init__(self, traceparent: str) -> None:
        self.traceparent = traceparent
        self.token: Any = None

    def __enter__(self) -> None:
        self.token = PASS_ON.set(self.traceparent)

    def __exit__(self, *_: object) -> None:
        PASS_ON.reset(self.token)


# provider attempts


class AttemptTrace:
    """The CLIENT span of one provider attempt, and what the reply said."""

    def __init__(self, span: Span) -> None:
        self.span = span
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.response_model: str | None = None
        self.response_id: str | None = None

    def reply(self, response: LLMResponse) -> None:
        self.usage, self.finish = response.usage, response.finish_reason
        self.response_model = response.provider_model or None
        self.response_id = response.provider_response_id

    def chunk(self, chunk: StreamChunk) -> None:
        if chunk.usage is not None:
            self.usage = chunk.usage if self.usage is None else self.usage.merged(chunk.usage)
        self.finish = chunk.finish_reason or self.finish

    def end(self, error_type: str | None) -> None:
        span = self.span
        if self.response_model:
            span.set_attribute("gen_ai.response.model", self.response_model)
        if self.response_id:
            span.set_attribute("gen_ai.response.id", self.response_id)
        if self.finish:
            span.set_attribute("gen_ai.response.finish_reasons", [self.finish])
        if self.usage is not None:
            span.set_attribute("gen_ai.usage.input_tokens", self.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", self.usage.completion_tokens)
        if error_type is not None:
            _error(span, error_type)
        span.end()


def start_attempt(
    spec: ProviderSpec,
    provider: str,
    model: str,
    wire_model: str,
    url: str,
    parameters: dict[str, Any],
    stream: bool,
) -> AttemptTrace | None:
    """A CLIENT span for one provider attempt (child of the current span; None: off)."""
    if _tracer is None:
        return None
    from opentelemetry.trace import SpanKind

    where = urlsplit(url)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": GENAI_PROVIDER.get(spec.type, spec.type),
        "gen_ai.request.model": wire_model,
        "cb.provider": provider,
        "cb.model": model,
        "cb.stream": stream,
        "server.address": where.hostname or "",
    }
    if where.port:
        attributes["server.port"] = where.port
    for name in ("max_tokens", "temperature", "top_p"):
        if isinstance(parameters.get(name), int | float):
            attributes[f"gen_ai.request.{name}"] = parameters[name]
    span = _tracer.start_span(f"chat {wire_model}", None, SpanKind.CLIENT, attributes)
    return AttemptTrace(span)


# tools and MCP requests


def tool_call(name: str, call_id: str, source: str | None) -> Any:
    """The INTERNAL span of one tool call, current inside the block (a no-op when off)."""
    if _tracer is None:
        return _NOOP
    from opentelemetry.trace import SpanKind

    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.call.id": call_id,
        "gen_ai.tool.type": "function" if source in (None, "builtin") else "extension",
    }
    if source and source != "builtin":
        attributes["cb.mcp.server"] = source
    span = _tracer.start_span(f"execute_tool {name}", None, SpanKind.INTERNAL, attributes)
    return _Current(span)


def failed(span: Span | None, error_type: str) -> None:
    """Mark a tool call's or MCP request's span failed (the tool answered with an error)."""
    if span is not None:
        _error(span, error_type)


def mcp_request(method: str, target: str, server: str, url: str | None) -> Any:
    """The CLIENT span of one MCP request, current inside the block (a no-op when off)."""
    if _tracer is None:
        return _NOOP
    from opentelemetry.trace import SpanKind

    attributes: dict[str, Any] = {
        "mcp.method.name": method,
        "gen_ai.tool.name": target,
        "cb.mcp.server": server,
        "network.transport": "tcp" if url else "pipe",
    }
    if url:
        where = urlsplit(url)
        attributes["server.address"] = where.hostname or ""
        if where.port:
            attributes["server.port"] = where.port
    return _Current(_tracer.start_span(f"{method} {target}", None, SpanKind.CLIENT, attributes))


def _error(span: Span, error_type: str) -> None:
    """An error status and its `error.type`; never the error's message (a provider's may
    quote the request)."""
    from opentelemetry.trace import StatusCode

    span.set_attribute("error.type", error_type)
    span.set_status(StatusCode.ERROR)


def _attach(span: Span) -> object:
    from opentelemetry import context, trace

    return context.attach(trace.set_span_in_context(span))


def _detach(token: Any) -> None:
    from opentelemetry import context

    context.detach(token)


def _error_type(exc: BaseException) -> str:
    kind = getattr(exc, "type", None)  # a CBError's stable type
    return kind if isinstance(kind, str) else type(exc).__qualname__
