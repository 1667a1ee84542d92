"""What the metrics cost per request, in one process and without Ray: the ingress
middleware (`api/request_metrics.py`) around a bare ASGI app, the calls an execution makes
in its tenant actor (`actors/metrics.py`: one provider attempt, its end, two group-commit
writes), and one report (the recorder's deltas taken and pickled as Ray would send them).
CPU time of this process only (`time.process_time`), so other load on the machine does not
count.

    python bench/bench_metrics.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import pickle
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors import metrics  # noqa: E402
from api.request_metrics import RequestMetrics  # noqa: E402
from domain.llm import Usage  # noqa: E402

ROUTE = type("Route", (), {"path": "/api/v1/agents/{agent_id}/execute"})()
USAGE = Usage.of(120, 40)


async def bare(scope: Any, receive: Any, send: Any) -> None:
    scope["route"] = ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def ingress(app: Any, n: int) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    started = time.process_time()
    for _ in range(n):
        scope = {"type": "http", "method": "POST", "path": "/x", "headers": []}
        await app(scope, receive, send)
    return time.process_time() - started


def execution(n: int, tenants: int) -> float:
    started = time.process_time()
    for i in range(n):
        tenant = f"tenant-{i % tenants}"
        metrics.attempt_done(tenant, "openai", "openai", "gpt-4o-mini", "gpt-4o-mini", None,
                             0.2, None, USAGE)  # fmt: skip
        metrics.execution_ended(tenant, "agent_execution", "completed", 0.25, "gpt-4o-mini", 1e-4)
        metrics.store_written(0.002, 3)
        metrics.store_written(0.002, 2)
    return time.process_time() - started


def report() -> tuple[float, int]:
    started = time.process_time()
    batch = metrics.RECORDER.take()
    size = len(pickle.dumps(batch))
    return time.process_time() - started, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--tenants", type=int, default=100, help="tenant label values")
    n = parser.parse_args().requests
    tenants = parser.parse_args().tenants
    without = asyncio.run(ingress(bare, n))
    with_metrics = asyncio.run(ingress(RequestMetrics(bare), n))
    recorded = execution(n, tenants)
    took, size = report()
    print(f"{n} requests, {tenants} tenants, python {sys.version.split()[0]}")
    print(f"ingress middleware: {(with_metrics - without) / n * 1e6:6.1f} µs CPU per request "
          f"(bare ASGI call {without / n * 1e6:.1f} µs)")  # fmt: skip
    print(f"tenant actor, one execution's recording: {recorded / n * 1e6:6.1f} µs CPU")
    print(f"one report of {tenants} tenants' series: {took * 1e3:.2f} ms CPU, {size} bytes pickled")


if __name__ == "__main__":
    main()
