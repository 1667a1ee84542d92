"""What the Python SDK costs its caller beside raw httpx, against the same gateway.

Starts the emulator and the gateway like `bench_execute.py` and, one call at a time (C=1),
runs the same execution through raw httpx and through `circuit_breaker.Client`, whole and
streamed: latency p50/p99 and the client's own CPU per call (this process, which the SDK
runs in). The gateway and provider are the same for both, so the difference is the SDK's.

    python bench/bench_sdk.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from circuit_breaker import Client

from bench.bench_execute import (
    READY_TIMEOUT_S,
    machine,
    percentile,
    pin_to,
    run_with_services,
    setup_agent,
    wait_http,
)


def measure(name: str, total: int, call: Callable[[], None]) -> dict[str, Any]:
    """`total` calls one after another: latency percentiles and this process's CPU per call."""
    for _ in range(20):
        call()  # warm up
    latencies = []
    cpu0 = time.process_time()
    for _ in range(total):
        t0 = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu_ms = (time.process_time() - cpu0) * 1000 / total
    latencies.sort()
    return {
        "target": name,
        "requests": total,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "client_cpu_ms": cpu_ms,
    }


def calls(base: str, url: str, headers: dict[str, str]) -> list[tuple[str, Callable[[], None]]]:
    """Raw httpx and SDK calls of the same execution, whole and streamed."""
    agent_id = url.rsplit("/", 2)[-2]
    raw = httpx.Client(base_url=base, headers=headers, timeout=30)
    sdk = Client(
        base_url=base,
        tenant_id=headers["X-Tenant-ID"],
        api_key=headers["Authorization"].removeprefix("Bearer "),
    )

    def raw_whole() -> None:
        reply = raw.post(url.removeprefix(base), json={"prompt": "hello"})
        assert reply.status_code == 200 and json.loads(reply.content)["status"] == "completed"

    def sdk_whole() -> None:
        assert sdk.agents.execute(agent_id, prompt="hello").content

    def raw_stream() -> None:
        body = {"prompt": "hello", "stream_options": {"on_disconnect": "continue"}}
        with raw.stream("POST", url.removeprefix(base) + "/stream", json=body) as reply:
            assert any(line == "event: execution_complete" for line in reply.iter_lines())

    def sdk_stream() -> None:
        with sdk.agents.stream(agent_id, prompt="hello") as stream:
            assert stream.final().content

    return [
        ("httpx whole", raw_whole),
        ("sdk whole", sdk_whole),
        ("httpx stream", raw_stream),
        ("sdk stream", sdk_stream),
    ]


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> list[dict[str, Any]]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/ready", gw_proc, READY_TIMEOUT_S)
    url, headers = await setup_agent(svc["gateway"], svc["admin_token"])
    found = []
    for name, call in calls(svc["gateway"], url, headers):
        found.append(await asyncio.to_thread(measure, name, args.requests, call))
        print(f"  {name:14} done", flush=True)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="measured calls per target")
    args = parser.parse_args(argv)
    args.skip_gateway, args.postgres, args.mode = False, None, "direct"
    pin_to(1)()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = machine()
    results = run_with_services(args, bench)
    if results is None:
        return 1
    print(
        f"\n{meta['date']}  nproc={meta['nproc']}  (gateway on CPU 0; emulator + client on CPU 1)"
    )
    print(f"{'target':14} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8} {'client CPU ms/call':>19}")
    for r in results:
        print(
            f"{r['target']:14} {r['requests']:>6} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['client_cpu_ms']:>19.2f}"
        )
    by = {r["target"]: r for r in results}
    for kind in ("whole", "stream"):
        raw, sdk = by[f"httpx {kind}"], by[f"sdk {kind}"]
        print(
            f"SDK {kind}: p50 {sdk['p50_ms'] - raw['p50_ms']:+.2f} ms, "
            f"client CPU {sdk['client_cpu_ms'] - raw['client_cpu_ms']:+.2f} ms per call"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
