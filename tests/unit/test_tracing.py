"""Traces in one process: off by default (nothing of OpenTelemetry loaded, no span, no id),
and on, the ingress's server span over a real FastAPI app (actors are fakes), exported
through the real OTLP/HTTP exporter to a real receiver (`tests/support/otlp.py`)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from actors import tracing
from actors.settings import ROOT, Settings
from api.app import create_app
from api.runtime import Runtime
from tests.support.otlp import OtlpReceiver
from tests.unit.test_api_runtime import HEADERS, PROMPT, FakeActor, FakeActors, completed

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_with_no_endpoint_no_tracer_exists_and_nothing_of_opentelemetry_is_loaded() -> None:
    """The off path in a fresh process: `setup` without an endpoint makes no provider, the
    helpers answer None at once, and neither the SDK nor the API was imported."""
    script = """
import sys
from actors import tracing
from actors.settings import Settings
assert tracing.setup(Settings(), "ingress") is False and not tracing.enabled()
assert tracing._provider is None and tracing._tracer is None
assert tracing.start_execution(None, "t", "e", "agent_execution", "a", "m", False) is None
with tracing.mcp_request("tools/call", "x", "s", None) as span:
    assert span is None
with tracing.tool_call("x", "c", "builtin") as span:
    assert span is None
assert tracing.outgoing() is None and tracing.trace_id_hex(None, None) is None
loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
assert not loaded, loaded
print("off")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and done.stdout.strip() == "off", done.stderr


def test_with_tracing_off_a_caller_trace_is_passed_on_unchanged() -> None:
    with tracing.running(None, None, INCOMING):
        assert tracing.outgoing() == INCOMING
        assert tracing.traceparent_for(None) == INCOMING
    assert tracing.outgoing() is None
    assert tracing.trace_id_hex(None, INCOMING) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.trace_id_hex(None, "00-" + "0" * 32 + "-00f067aa0ba902b7-01") is None


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    """Tracing on in this process for one test, exporting to a real OTLP receiver."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    with OtlpReceiver() as receiver:
        provider = TracerProvider(shutdown_on_exit=False)
        exporter = OTLPSpanExporter(endpoint=tracing.traces_url(receiver.endpoint))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        monkeypatch.setattr(tracing, "_provider", provider)
        monkeypatch.setattr(tracing, "_tracer", provider.get_tracer("test"))
        yield receiver
        provider.shutdown()


async def test_fastapis_own_telemetry_stays_off_even_with_a_global_tracer_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server span is `TraceRequests`'s: a process-wide provider (one an operator's
    auto-instrumentation sets) adds no second one from FastAPI's native telemetry, and
    without one no request pays FastAPI's check for it."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exported = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exported))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)  # as if set globally

    def execute(*args: Any) -> Any:
        return {"value": completed(args[2], args[0], "hello")}

    app = create_app(Runtime(Settings(), FakeActors(FakeActor(execute=execute))))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        ok = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=HEADERS)
        health = await http.get("/health")
    assert ok.status_code == 200 and health.status_code == 200
    assert exported.get_finished_spans() == ()
    provider.shutdown()


async def test_a_request_gets_a_server_span_continuing_its_traceparent(
    traced: OtlpReceiver,
) -> None:
    def execute(*args: Any) -> Any:
        if args[0] == "boom":
            return RuntimeError("the actor fell over")  # an unexpected failure: a 500
        return {"value": completed(args[2], args[0], "hello")}

    tenant = FakeActor(execute=execute)
    app = create_app(Runtime(Settings(), FakeActors(tenant)))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
        traced_headers = {**HEADERS, "traceparent": INCOMING}
        ok = await http.post("/api/v1/agents/a1/execute", json=PROMPT, headers=traced_headers)
        failed = await http.post("/api/v1/agents/boom/execute", json=PROMPT, headers=HEADERS)
    assert ok.status_code == 200 and failed.status_code == 500

    spans = traced.wait_for(lambda s: len(s) >= 2)
    server, other = spans
    assert server.kind == "SERVER" and server.name == "POST /api/v1/agents/{agent_id}/execute"
    assert server.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server.parent_span_id == "00f067aa0ba902b7"
    assert server.attributes["http.route"] == "/api/v1/agents/{agent_id}/execute"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["http.request.method"] == "POST" and server.status == "UNSET"
    # the tenant actor is asked to continue the trace from the server span
    sent = tenant.calls[0][1][-1]
    assert sent == f"00-{server.trace_id}-{server.span_id}-01"

    # no traceparent: a new trace; a 500 is an error, and its body names the trace
    assert other.trace_id != server.trace_id and other.parent_span_id == ""
    assert other.status == "ERROR" and other.attributes["http.response.status_code"] == 500
    assert other.attributes["error.type"] == "RuntimeError"
    assert failed.json()["trace_id"] == other.trace_id
