"""What tracing costs per request, in one process and without Ray: the ingress middleware
(`api/traces.py`) and the tenant actor's hooks (`actors/tracing.py`) for one execution with
one provider attempt, off and then on (three spans, batched and exported over OTLP/HTTP to a
counting sink in a child process, the export's CPU included). The end-to-end figure is
`bench_execute.py --otlp` beside a run without it; this one is precise where that one is
within its noise.

    python bench/bench_tracing.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors import tracing  # noqa: E402
from actors.settings import Settings  # noqa: E402
from api.traces import TraceRequests  # noqa: E402
from domain.config import ProviderSpec  # noqa: E402
from domain.llm import LLMResponse, Usage  # noqa: E402

BATCH = 500  # requests between flushes: the exporter keeps up, as under real load
SPEC = ProviderSpec(type="openai", base_url="http://127.0.0.1:9/v1")
URL = "http://127.0.0.1:9/v1/chat/completions"
REPLY = LLMResponse(content="hi", finish_reason="stop", usage=Usage.of(10, 5), provider_model="m")
EXECUTION = SimpleNamespace(
    status="completed", model_resolved="m", outcome=SimpleNamespace(error=None)
)
HEADERS = [(b"host", b"gw"), (b"content-type", b"application/json"), (b"x-tenant-id", b"t"),
           (b"authorization", b"Bearer k"), (b"content-length", b"20")]  # fmt: skip


async def _answer(send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _execution(scope: Any, receive: Any, send: Any) -> None:
    """What one execution does with tracing, from the ingress's call to the attempt's end."""
    traceparent = tracing.outgoing()
    span = tracing.start_execution(traceparent, "t", "e", "agent_execution", "a", "m", False)
    with tracing.running(span, EXECUTION, traceparent):
        trace = tracing.start_attempt(SPEC, "openai", "m", "m", URL, {"temperature": 0.3}, False)
        tracing.traceparent_for(trace and trace.span)
        if trace is not None:
            trace.reply(REPLY)
            trace.end(None)
    await _answer(send)


async def _bare(scope: Any, receive: Any, send: Any) -> None:
    await _answer(send)


async def _requests(app: Any, n: int) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_: Any) -> None:
        pass

    for _ in range(n):
        scope = {"type": "http", "method": "POST", "path": "/api/v1/agents/a/execute",
                 "headers": HEADERS, "scheme": "http", "client": ("127.0.0.1", 1)}  # fmt: skip
        await app(scope, receive, send)


def _cpu_s(app: Any, n: int, flush: bool = False) -> float:
    """Process CPU seconds (every thread's) for `n` requests through `app`."""
    asyncio.run(_requests(app, min(n, BATCH)))  # warm up
    tracing.flush(30)
    started = time.process_time()
    for _ in range(n // BATCH):
        asyncio.run(_requests(app, BATCH))
        if flush:
            tracing.flush(30)
    return time.process_time() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    args = parser.parse_args(argv)
    n = max(BATCH, args.requests // BATCH * BATCH)
    base = _cpu_s(_bare, n)
    off = _cpu_s(TraceRequests(_execution), n) - base
    sink_code = (
        f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from tests.support.otlp import OtlpReceiver\n"
        "print(OtlpReceiver(decode=False).start().endpoint, flush=True); time.sleep(3600)"
    )
    sink = subprocess.Popen([sys.executable, "-c", sink_code], stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout is not None
        tracing.setup(Settings(otlp_endpoint=sink.stdout.readline().strip()), "bench")
        on = _cpu_s(TraceRequests(_execution), n, flush=True) - base
    finally:
        sink.kill()
    print(f"{n} requests; CPU per request over a bare ASGI call:")
    print(f"  tracing off: {off / n * 1e6:8.2f} µs  (header scan, hooks that return at once)")
    print(f"  tracing on:  {on / n * 1e6:8.2f} µs  (3 spans, batched, OTLP/HTTP export)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
