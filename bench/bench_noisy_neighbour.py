"""Noisy neighbour: tenant A floods while tenant B sends steady traffic; B's latency with and
without the flood, beside direct calls to the provider in the same run.

Phases (each B phase is a closed loop of `--requests` at concurrency `--b-concurrency`):
direct to the emulator; B alone through the gateway; B while A floods at `--a-concurrency`
with the ingress running a fixed 256 executions at once, a fixed `--in-flight`, and the
default adaptive number (lowered while the replica's event loop lags; the rest queued fairly
by tenant); B while A floods with A limited to `--a-limit` requests a minute (refusals
answered by the ingress from memory).

    python bench/bench_noisy_neighbour.py [--requests 300] [--a-concurrency 64] [--a-limit 600]
                                          [--in-flight 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    DIRECT_BODY,
    pin_to,
    run_load,
    run_with_services,
    setup_agent,
    wait_http,
)

PROMPT = {"prompt": "hello"}


async def flood(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], concurrency: int,
    stop: asyncio.Event,
) -> dict[str, int]:  # fmt: skip
    """A's closed loop until `stop`: counts of answers by status."""
    counts: dict[str, int] = {}
    payload = json.dumps(PROMPT).encode()
    hdrs = {"Content-Type": "application/json", **headers}

    async def worker() -> None:
        while not stop.is_set():
            try:
                async with http.post(url, data=payload, headers=hdrs) as resp:
                    await resp.read()
                    counts[str(resp.status)] = counts.get(str(resp.status), 0) + 1
            except (TimeoutError, aiohttp.ClientError) as exc:
                counts[type(exc).__name__] = counts.get(type(exc).__name__, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/ready", gw_proc, 180)
    base, admin = svc["gateway"], {"Authorization": f"Bearer {svc['admin_token']}"}
    a_url, a_headers = await setup_agent(base, svc["admin_token"])
    b_url, b_headers = await setup_agent(base, svc["admin_token"])
    a_tenant = a_headers["X-Tenant-ID"]
    ok = lambda data: b'"completed"' in data  # noqa: E731
    results: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        direct = f"{svc['emulator']}/chat/completions"
        await run_load(http, direct, DIRECT_BODY, {"Authorization": "Bearer bench"}, 50, 1,
                       lambda d: b"choices" in d)  # fmt: skip
        results["direct"] = await run_load(
            http, direct, DIRECT_BODY, {"Authorization": "Bearer bench"}, args.requests,
            args.b_concurrency, lambda d: b"choices" in d,
        )  # fmt: skip
        await run_load(http, b_url, PROMPT, b_headers, 50, 1, ok)  # warm-up
        results["B alone"] = await run_load(
            http, b_url, PROMPT, b_headers, args.requests, args.b_concurrency, ok
        )
        limits_url = f"{base}/api/v1/admin/tenants/{a_tenant}/limits"
        ingress_url = f"{base}/api/v1/admin/config/ingress"
        defaults = {"max_in_flight": 256, "target_loop_lag_ms": 20}
        phases = (
            ("B + A flooding, fixed 256 in flight", None, {"target_loop_lag_ms": 0}),
            (f"B + A flooding, fixed {args.in_flight} in flight", None,
             {"max_in_flight": args.in_flight, "target_loop_lag_ms": 0}),
            ("B + A flooding, adaptive (default)", None, {}),
            (f"B + A flooding, A limited to {args.a_limit}/min", args.a_limit, {}),
        )  # fmt: skip
        for name, limit, ingress in phases:
            async with http.put(ingress_url, json={**defaults, **ingress}, headers=admin) as reply:
                assert reply.status == 200, await reply.text()
            if limit is not None:
                body = {"requests_per_minute": limit}
                async with http.put(limits_url, json=body, headers=admin) as reply:
                    assert reply.status == 200, await reply.text()
            stop = asyncio.Event()
            noisy = asyncio.create_task(flood(http, a_url, a_headers, args.a_concurrency, stop))
            await asyncio.sleep(1.0)  # let the flood build up
            started = time.perf_counter()
            phase = await run_load(
                http, b_url, PROMPT, b_headers, args.requests, args.b_concurrency, ok
            )
            stop.set()
            counts = await noisy
            phase["a_answers"] = counts
            phase["a_per_s"] = round(sum(counts.values()) / (time.perf_counter() - started), 1)
            results[name] = phase
    return results


def report(results: dict[str, Any]) -> None:
    print(f"{'phase':<44} {'B p50 ms':>9} {'B p99 ms':>9} {'B req/s':>8} {'B err':>6}  A")
    for name, r in results.items():
        a = r.get("a_answers")
        shown = f"{r.get('a_per_s')}/s {a}" if a else ""
        print(f"{name:<44} {r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['rps']:>8.1f} "
              f"{r['errors']:>6}  {shown}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="B's requests per phase")
    parser.add_argument("--b-concurrency", type=int, default=1)
    parser.add_argument("--a-concurrency", type=int, default=64)
    parser.add_argument("--a-limit", type=int, default=600, help="A's requests/min, last phase")
    parser.add_argument("--in-flight", type=int, default=8, help="fixed ingress slots, one phase")
    parser.add_argument("--mode", choices=("proxy", "direct"), default="direct")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    args.postgres, args.skip_gateway = None, False
    pin_to(1)()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run_with_services(args, bench)
    if results is None:
        return 1
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
