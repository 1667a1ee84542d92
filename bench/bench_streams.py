"""How many slow streams one machine holds open, and the memory and CPU they take.

Opens N streams (at once, or over `--ramp-s` seconds), each answered by the emulator with one
chunk a second for S seconds, first straight at the emulator (the floor), then through the
gateway (`serve_app.py`); prints per target: streams that finished, time to the first content
chunk, the worst wait between two chunks, how late each chunk arrived after the emulator sent
it (its text carries the send time), and the gateway's memory (RSS of its process tree) and
CPU while they were open.

    python bench/bench_streams.py [--streams 1000] [--seconds 20] [--tenants 4] [--ramp-s 0]
                                   [--mode direct] [--unpinned]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    DIRECT_BODY,
    FIRST_CONTENT,
    descendants,
    percentile,
    pin_to,
    post_json,
    run_with_services,
    tree_cpu_by_name,
    wait_http,
)

MATCH = "hold-open"
# the emulator's `{sent_at}` in a content chunk's text (OpenAI's delta or the gateway's)
STAMP = re.compile(rb'"delta":(?:\{"content":)?"t\d+@(\d+\.\d{6})')
PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss_by_name(root: int | None) -> dict[str, float]:
    """Resident memory (MiB) of `root`'s process tree, by process name."""
    by_name: dict[str, float] = {}
    if root is None:
        return by_name
    for pid in descendants(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            name = Path(f"/proc/{pid}/stat").read_text().split("(", 1)[1].rsplit(")", 1)[0]
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
            by_name[name] = by_name.get(name, 0.0) + pages * PAGE / 2**20
    return by_name


async def hold(
    http: aiohttp.ClientSession,
    targets: list[tuple[str, dict[str, str]]],
    body: dict[str, Any],
    streams: int,
    marker: Any,
    on_all_open: Any,
    ramp_s: float = 0.0,
) -> dict[str, Any]:
    """Open `streams` streams (round-robin over `targets`), at once or spread evenly over
    `ramp_s` seconds; wait for all to end."""
    payload = json.dumps(body).encode()
    ttft: list[float] = []
    headers_ms: list[float] = []
    gaps: list[float] = []
    late: list[tuple[float, int]] = []  # (ms since the emulator sent it, streams live then)
    errors: list[str] = []
    opened = live = peak_live = 0
    all_open = asyncio.Event()

    async def one(i: int) -> None:
        nonlocal opened, live, peak_live
        url, headers = targets[i % len(targets)]
        if ramp_s:
            await asyncio.sleep(start + i * ramp_s / streams - time.perf_counter())
        t0 = time.perf_counter()
        last: float | None = None
        worst = 0.0
        try:
            async with http.post(
                url, data=payload, headers={"Content-Type": "application/json", **headers}
            ) as resp:
                if resp.status != 200:
                    errors.append(f"HTTP {resp.status}: {(await resp.read())[:300]!r}")
                    return
                headers_ms.append((time.perf_counter() - t0) * 1000)
                async for line in resp.content:
                    stamp = STAMP.search(line)  # a chunk's data line (after its event line)
                    if stamp is not None:
                        late.append(((time.time() - float(stamp[1])) * 1000, live))
                    if not marker.search(line):
                        continue
                    now = time.perf_counter()
                    if last is None:
                        ttft.append((now - t0) * 1000)
                        live += 1
                        peak_live = max(peak_live, live)
                        opened += 1
                        if opened == streams:
                            all_open.set()
                    else:
                        worst = max(worst, now - last)
                    last = now
        except (TimeoutError, aiohttp.ClientError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            return
        finally:
            if last is not None:
                live -= 1
        if last is None:
            errors.append("stream carried no content")
        else:
            gaps.append(worst * 1000)

    start = time.perf_counter()
    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    opened_all = asyncio.create_task(all_open.wait())
    everything = asyncio.gather(*tasks)
    done, _ = await asyncio.wait({opened_all, everything}, return_when="FIRST_COMPLETED")
    open_s = time.perf_counter() - start
    sample = on_all_open() if opened_all in done else None
    await asyncio.gather(*tasks)
    opened_all.cancel()
    ttft.sort()
    gaps.sort()
    headers_ms.sort()
    late_all = sorted(ms for ms, _ in late)
    # the chunks that came while at least 90 % of the streams were open at once
    late_held = sorted(ms for ms, now_live in late if now_live >= 0.9 * streams)
    return {
        "streams": streams,
        "finished": len(gaps),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "all_open_after_s": open_s if sample is not None else None,
        "wall_s": time.perf_counter() - start,
        "headers_p50_ms": percentile(headers_ms, 50),
        "headers_p99_ms": percentile(headers_ms, 99),
        "ttft_p10_ms": percentile(ttft, 10),
        "ttft_p50_ms": percentile(ttft, 50),
        "ttft_p99_ms": percentile(ttft, 99),
        "worst_gap_p50_ms": percentile(gaps, 50),
        "worst_gap_p99_ms": percentile(gaps, 99),
        "chunks_timed": len(late_all),
        "late_p50_ms": percentile(late_all, 50),
        "late_p99_ms": percentile(late_all, 99),
        "late_max_ms": late_all[-1] if late_all else 0.0,
        "peak_open": peak_live,
        "chunks_timed_held": len(late_held),
        "late_held_p50_ms": percentile(late_held, 50) if late_held else None,
        "late_held_p99_ms": percentile(late_held, 99) if late_held else None,
        **(sample or {}),
    }


async def setup_tenants(base: str, admin_token: str, count: int) -> list[tuple[str, dict]]:
    """`count` tenants with one agent each: their stream URLs and headers."""
    out = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        admin = {"Authorization": f"Bearer {admin_token}"}
        for i in range(count):
            tenant = await post_json(
                http, f"{base}/api/v1/admin/tenants", {"name": f"hold-{i}"}, admin
            )
            headers = {
                "X-Tenant-ID": tenant["tenant"]["id"],
                "Authorization": f"Bearer {tenant['api_key']}",
            }
            body = {"name": "hold", "model": "gpt-4o-mini", "system_prompt": "Be slow."}
            agent = await post_json(http, f"{base}/api/v1/agents", body, headers)
            out.append((f"{base}/api/v1/agents/{agent['id']}/execute/stream", headers))
    return out


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> list[dict[str, Any]]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/ready", gw_proc, 120)
    tenants = await setup_tenants(svc["gateway"], svc["admin_token"], args.tenants)
    connector = aiohttp.TCPConnector(limit=args.streams * 2)
    timeout = aiohttp.ClientTimeout(total=args.seconds * 4 + 120)
    results = []
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        # warm every tenant's actor and the connection pools first
        warm = {"prompt": "warm up"}
        await hold(http, tenants, warm, len(tenants) * 4, FIRST_CONTENT["gateway-stream"], dict)
        direct_body = {
            **DIRECT_BODY,
            "messages": [{"role": "user", "content": MATCH}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        direct = [(f"{svc['emulator']}/chat/completions", {"Authorization": "Bearer bench"})]
        res = await hold(
            http, direct, direct_body, args.streams, FIRST_CONTENT["direct-stream"], dict,
            args.ramp_s,
        )  # fmt: skip
        results.append({"target": "direct", **res})
        print(f"  direct  done: {res['finished']}/{res['streams']} streams", flush=True)

        gw_pid = svc["gateway_pid"]
        rss_before = tree_rss_by_name(gw_pid)
        cpu_before = tree_cpu_by_name(gw_pid)

        def sample() -> dict[str, Any]:
            rss = tree_rss_by_name(gw_pid)
            grown = {k: v - rss_before.get(k, 0.0) for k, v in rss.items()}
            return {
                "rss_before_mib": sum(rss_before.values()),
                "rss_open_mib": sum(rss.values()),
                "rss_grown_by_process_mib": dict(sorted(grown.items(), key=lambda kv: -kv[1])[:5]),
            }

        res = await hold(
            http,
            tenants,
            {"prompt": MATCH},
            args.streams,
            FIRST_CONTENT["gateway-stream"],
            sample,
            args.ramp_s,
        )
        cpu_after = tree_cpu_by_name(gw_pid)
        by_process = {k: v - cpu_before.get(k, 0.0) for k, v in cpu_after.items()}
        cpu = sum(by_process.values())
        stream_seconds = max(res["finished"], 1) * args.seconds
        res.update(
            gateway_cpu_s=cpu,
            gateway_cpu_ms_per_stream_s=cpu * 1000 / stream_seconds,
            gateway_cpu_s_by_process=dict(sorted(by_process.items(), key=lambda kv: -kv[1])[:6]),
        )
        results.append({"target": "gateway", **res})
        print(f"  gateway done: {res['finished']}/{res['streams']} streams", flush=True)
    return results


def report(args: argparse.Namespace, results: list[dict[str, Any]]) -> None:
    print(
        f"\n{args.streams} streams "
        + (f"opened over {args.ramp_s:g} s" if args.ramp_s else "at once")
        + f", one chunk a second for {args.seconds} s, over "
        f"{args.tenants} tenants; serve mode {args.mode}; load avg now {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'target':8} {'finished':>8} {'errors':>6} {'all open s':>10} {'200 p50':>9} "
        f"{'200 p99':>9} {'TTFT p10':>9} {'TTFT p50':>9} "
        f"{'TTFT p99':>9} {'worst gap p50':>13} {'worst gap p99':>13} "
        f"{'late p50':>9} {'late p99':>9} {'late max':>9} {'peak open':>9} {'held p50':>9} "
        f"{'held p99':>9}"
    )
    for r in results:
        all_open = f"{r['all_open_after_s']:.2f}" if r["all_open_after_s"] else "never"
        print(
            f"{r['target']:8} {r['finished']:>8} {r['errors']:>6} {all_open:>10} "
            f"{r['headers_p50_ms']:>9.1f} {r['headers_p99_ms']:>9.1f} {r['ttft_p10_ms']:>9.1f} "
            f"{r['ttft_p50_ms']:>9.1f} {r['ttft_p99_ms']:>9.1f} "
            f"{r['worst_gap_p50_ms']:>13.1f} {r['worst_gap_p99_ms']:>13.1f} "
            f"{r['late_p50_ms']:>9.1f} {r['late_p99_ms']:>9.1f} {r['late_max_ms']:>9.1f} "
            f"{r['peak_open']:>9} {_ms(r['late_held_p50_ms'])} {_ms(r['late_held_p99_ms'])}"
        )
        if r["first_error"]:
            print(f"  first error: {r['first_error']}")
    print(
        "late: ms from the emulator's send of a chunk to its arrival at the client (issue 15: "
        "each chunk relayed within 50 ms at p99); peak open: streams open at once at most; "
        "held: the chunks that came while at least 90 % of the streams were open at once"
    )
    gw = next((r for r in results if r["target"] == "gateway"), None)
    if gw and "rss_open_mib" in gw:
        grown = gw["rss_open_mib"] - gw["rss_before_mib"]
        print(
            f"gateway memory: {gw['rss_before_mib']:.0f} MiB idle, {gw['rss_open_mib']:.0f} MiB "
            f"with all open: +{grown:.0f} MiB, {grown * 1024 / gw['streams']:.0f} KiB per stream"
        )
        print(
            "  grown most: "
            + ", ".join(f"{k} +{v:.0f}" for k, v in gw["rss_grown_by_process_mib"].items())
        )
    if gw:
        print(
            f"gateway CPU: {gw['gateway_cpu_s']:.1f} s over the run, "
            f"{gw['gateway_cpu_ms_per_stream_s']:.2f} ms per stream-second; by process (s): "
            + ", ".join(f"{k} {v:.1f}" for k, v in gw["gateway_cpu_s_by_process"].items())
        )


def _ms(value: float | None) -> str:
    return f"{value:>9.1f}" if value is not None else f"{'—':>9}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=20, help="how long each stream lasts")
    parser.add_argument("--tenants", type=int, default=4)
    parser.add_argument(
        "--ramp-s", type=float, default=0.0, help="open the streams over this many seconds"
    )
    parser.add_argument("--mode", choices=("proxy", "direct"), default="direct")
    parser.add_argument(
        "--unpinned", action="store_true", help="pin nothing: gateway, emulator and load share"
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    args.postgres, args.skip_gateway, args.otlp, args.endpoints = None, False, None, 1
    args.emulator_script = [
        {
            "match": MATCH,
            "chunks": [f"t{i}@{{sent_at}} " for i in range(args.seconds)],
            "chunk_delay": 1.0,
        }
    ]
    pin_to(None if args.unpinned else 1)()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results = run_with_services(args, bench)
    if results is None:
        return 1
    report(args, results)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
