"""A real OTLP/HTTP trace receiver for tests (and a counting sink for bench/): an HTTP server
thread taking `POST /v1/traces` (protobuf `ExportTraceServiceRequest`, gzip or not), keeping
each span flattened (`ReceivedSpan`), answering as a collector does.

    with OtlpReceiver() as otlp:             # otlp.endpoint is OTEL_EXPORTER_OTLP_ENDPOINT
        ...
        spans = otlp.wait_for(lambda s: ..., timeout_s=10)
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_SPANS = 100_000  # the newest spans of a test session (older ones are let go)


@dataclass(frozen=True)
class ReceivedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str  # SERVER, CLIENT, INTERNAL, …
    attributes: dict[str, Any]
    status: str  # UNSET, OK, ERROR
    status_message: str
    resource: dict[str, Any] = field(default_factory=dict)


class OtlpReceiver:
    """Receives OTLP/HTTP traces on 127.0.0.1; `decode=False` only counts requests and bytes
    (a sink whose own cost stays out of a benchmark's way)."""

    def __init__(self, decode: bool = True) -> None:
        self.decode = decode
        self.spans: list[ReceivedSpan] = []
        self.requests = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="otlp-receiver", daemon=True
        )

    @property
    def endpoint(self) -> str:
        """The base URL (`OTEL_EXPORTER_OTLP_ENDPOINT`); traces arrive at `/v1/traces`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtlpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def trace(self, trace_id: str) -> list[ReceivedSpan]:
        """The spans received so far of one trace."""
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(
        self, done: Callable[[list[ReceivedSpan]], bool], timeout_s: float = 15.0
    ) -> list[ReceivedSpan]:
        """Every span received, once `done(spans)` holds (AssertionError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                spans = list(self.spans)
            if done(spans):
                return spans
            if time.monotonic() > deadline:
                raise AssertionError(f"the awaited spans did not arrive in {timeout_s} s")
            time.sleep(0.1)

    def wait_for_trace(
        self, trace_id: str, names: set[str], timeout_s: float = 15.0
    ) -> list[ReceivedSpan]:
        """The spans of `trace_id` once one of each name in `names` has arrived."""

        def complete(spans: list[ReceivedSpan]) -> bool:
            return names <= {s.name for s in spans if s.trace_id == trace_id}

        return [s for s in self.wait_for(complete, timeout_s) if s.trace_id == trace_id]

    def _receive(self, body: bytes) -> None:
        with self._lock:
            self.requests += 1
            self.bytes += len(body)
        if not self.decode:
            return
        spans = _decode(body)
        with self._lock:
            self.spans.extend(spans)
            del self.spans[:-MAX_SPANS]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                try:
                    receiver._receive(body)
                except Exception:
                    self.send_error(400)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse
                self.end_headers()

            def log_message(self, *_: Any) -> None:  # quiet
                pass

        return Handler


def _decode(body: bytes) -> list[ReceivedSpan]:
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    out = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=Span.SpanKind.Name(span.kind).removeprefix("SPAN_KIND_"),
                        attributes=_attributes(span.attributes),
                        status=Status.StatusCode.Name(span.status.code).removeprefix(
                            "STATUS_CODE_"
                        ),
                        status_message=span.status.message,
                        resource=resource,
                    )
                )
    return out


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None
