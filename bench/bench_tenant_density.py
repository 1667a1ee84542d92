"""Tenant density and cold start: memory per live tenant actor, and the first execution of a
tenant whose actor is new or was evicted for idleness, beside a warm one and beside direct
calls to the provider in the same run.

Starts the emulator and one gateway (`serve_app.py`, SQLite, direct ingress) with a short
idle eviction, then:
1. `--tenants` new tenants, each with an agent, one at a time (the tenant's actor is created
   by the first call: "new tenant"), then two executions of each ("first", "warm");
2. the memory of every live tenant actor process (`/proc/<pid>/smaps_rollup`: RSS, PSS, USS),
   and what that makes per GiB; at the end, the same for bare Ray actors (processes that
   imported nothing of this project) in a local Ray: the floor under any tenant actor;
3. once every tenant actor was evicted (`--idle-s` without a call), the first execution of
   each tenant again, one right after another ("evicted": its actor is started again from
   the store, in a spare worker while the pool lasts), then "warm";
4. once all were evicted again, the same with tenants coming one per `--pace-s` ("evicted,
   paced": occasional tenants, each finding a spare worker ready).

    python bench/bench_tenant_density.py [--tenants 30] [--idle-s 4] [--pace-s 2] [--json PATH]
    CB_SPARE_WORKERS=2 python bench/bench_tenant_density.py   # with two spare workers
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    DIRECT_BODY,
    descendants,
    machine,
    percentile,
    pin_to,
    run_load,
    run_with_services,
    setup_agent,
    wait_http,
)

PROMPT = {"prompt": "hello"}
ACTOR_PREFIX = "ray::TenantActor"
GIB = 1024**3


def tenant_actor_pids(gateway_pid: int) -> list[int]:
    """The gateway's live tenant actor processes (Ray names a worker by its actor class)."""
    pids = []
    for pid in descendants(gateway_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if command.decode(errors="replace").startswith(ACTOR_PREFIX):
            pids.append(pid)
    return pids


def memory_kib(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private) of one process, in KiB."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0])
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": private}


def memory_figures(pids: list[int]) -> dict[str, float]:
    """Mean RSS/PSS/USS per tenant actor in MiB, and how many such actors a GiB holds."""
    rows = []
    for pid in pids:
        try:
            rows.append(memory_kib(pid))
        except OSError:
            continue
    if not rows:
        return {}
    mean = {key: sum(r[key] for r in rows) / len(rows) / 1024 for key in ("rss", "pss", "uss")}
    return {
        "actors": len(rows),
        **{f"{key}_mib": round(value, 1) for key, value in mean.items()},
        "actors_per_gib_by_pss": round(1024 / mean["pss"], 1),
    }


def ray_worker_floor(actors: int = 4) -> dict[str, float]:
    """Memory of a bare Ray actor (a worker process that imported nothing of this project) in a
    local Ray of this process, after the gateway stopped: the floor under a tenant actor."""
    import ray

    @ray.remote(num_cpus=0)
    class Bare:
        def pid(self) -> int:
            return os.getpid()

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        handles = [Bare.remote() for _ in range(actors)]
        pids = ray.get([h.pid.remote() for h in handles])
        time.sleep(2)  # let their threads settle, as the tenant actors had
        return memory_figures(pids)
    finally:
        ray.shutdown()


async def first_and_second(
    http: aiohttp.ClientSession, agents: list[tuple[str, dict[str, str]]], pace_s: float = 0.0
) -> dict[str, list[float]]:
    """Each tenant's first execution, then its second, one tenant at a time (ms); with
    `pace_s`, tenants come at most one per `pace_s` (occasional tenants, not a burst)."""
    times: dict[str, list[float]] = {"first": [], "second": []}
    for url, headers in agents:
        arrived = time.perf_counter()
        for key in ("first", "second"):
            started = time.perf_counter()
            async with http.post(url, json=PROMPT, headers=headers) as reply:
                body = await reply.read()
                assert reply.status == 200 and b'"completed"' in body, body[:300]
            times[key].append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(max(0.0, pace_s - (time.perf_counter() - arrived)))
    return times


def summary(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 1),
        "p90_ms": round(percentile(ordered, 90), 1),
        "max_ms": round(ordered[-1], 1),
        "each_ms": [round(t) for t in times_ms],
    }


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/ready", gw_proc, 180)
    base = svc["gateway"]
    results: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        direct = f"{svc['emulator']}/chat/completions"
        results["direct"] = await run_load(
            http, direct, DIRECT_BODY, {"Authorization": "Bearer bench"}, 200, 1,
            lambda d: b"choices" in d,
        )  # fmt: skip
        agents, setups = [], []
        for _ in range(args.tenants):
            started = time.perf_counter()
            agents.append(await setup_agent(base, svc["admin_token"]))
            setups.append((time.perf_counter() - started) * 1000)
        results["new tenant (create + agent)"] = summary(setups)
        created = await first_and_second(http, agents)
        results["first execution"] = summary(created["first"])
        results["warm"] = summary(created["second"])
        results["memory"] = memory_figures(tenant_actor_pids(gw_proc.pid))
        for pace_s, name in ((0.0, "evicted actor"), (args.pace_s, "evicted, paced")):
            deadline = time.monotonic() + args.idle_s * 3 + 120
            while tenant_actor_pids(gw_proc.pid):  # every actor evicted for idleness
                assert time.monotonic() < deadline, "tenant actors were not evicted"
                await asyncio.sleep(0.5)
            again = await first_and_second(http, agents, pace_s)
            results[name] = summary(again["first"])
            results["warm again"] = summary(again["second"])
    return results


def report(meta: dict[str, Any], results: dict[str, Any]) -> None:
    print(f"machine: {meta}")
    print(f"direct to the provider: p50 {results['direct']['p50_ms']:.2f} ms")
    print(f"{'call':<34} {'n':>4} {'p50 ms':>9} {'p90 ms':>9} {'max ms':>9}")
    for name in ("new tenant (create + agent)", "first execution", "warm", "evicted actor",
                 "evicted, paced", "warm again"):  # fmt: skip
        r = results[name]
        print(f"{name:<34} {r['n']:>4} {r['p50_ms']:>9.1f} {r['p90_ms']:>9.1f} {r['max_ms']:>9.1f}")
    for name in ("evicted actor", "evicted, paced"):
        extra = results[name]["p50_ms"] - results["warm again"]["p50_ms"]
        print(f"{name} over warm, p50: {extra:.0f} ms")
    for name, mem in (("per tenant actor", results["memory"]),
                      ("per bare Ray actor (the floor)", results["ray worker floor"])):  # fmt: skip
        print(
            f"{name} ({mem['actors']} live): RSS {mem['rss_mib']} MiB, PSS {mem['pss_mib']} MiB,"
            f" USS {mem['uss_mib']} MiB; {mem['actors_per_gib_by_pss']} per GiB by PSS "
            f"({mem['actors_per_gib_by_pss'] * 24:.0f} in 24 GiB, nothing else counted)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=30)
    parser.add_argument("--idle-s", type=float, default=4.0, help="CB_TENANT_IDLE_EVICT_S")
    parser.add_argument(
        "--pace-s", type=float, default=2.0,
        help="the paced round: one evicted tenant's first call per this many seconds",
    )  # fmt: skip
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    args.skip_gateway, args.otlp, args.postgres, args.mode, args.endpoints = (
        False, None, None, "direct", 1,
    )  # fmt: skip
    os.environ["CB_TENANT_IDLE_EVICT_S"] = str(args.idle_s)
    pin_to(1)()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run_with_services(args, bench)
    if results is None:
        return 1
    results["ray worker floor"] = ray_worker_floor()
    meta = {
        **machine(), "tenants": args.tenants, "idle_evict_s": args.idle_s, "pace_s": args.pace_s,
        "spare_workers": os.environ.get("CB_SPARE_WORKERS", "default"),
    }  # fmt: skip
    report(meta, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
