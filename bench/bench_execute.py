"""End-to-end latency/throughput benchmark: POST /api/v1/agents/{id}/execute vs. the provider.

Starts the provider emulator (pinned to CPU 1) and the gateway (`serve_app.py`, pinned to CPU 0)
as subprocesses, runs closed-loop load from this process (pinned to CPU 1) straight at the
emulator ("direct", the floor) and through the gateway, and prints what the gateway adds.

    python bench/bench_execute.py [--requests N] [--concurrency 1,32] [--postgres URL]
                                  [--otlp [URL]] [--skip-gateway] [--json PATH]

`--otlp` turns the gateway's traces on (OTEL_EXPORTER_OTLP_ENDPOINT), exporting to URL or,
without one, to a sink in this process that only counts (tests/support/otlp.py); without
it the gateway runs with tracing off, so two runs compare the two.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import platform
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
WARMUP = 50
REQUEST_TIMEOUT_S = 30.0
PHASE_TIMEOUT_S = 600.0
LAG_SAMPLE_S = 0.2
READY_TIMEOUT_S = 120.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
DIRECT_BODY = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello"},
    ],
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pin_to(cpu: int | None) -> Callable[[], None]:
    """A preexec_fn pinning the child to one CPU (no-op for None or a CPU the machine lacks)."""

    def pin() -> None:
        if cpu is not None and cpu < (os.cpu_count() or 1):
            os.sched_setaffinity(0, {cpu})

    return pin


def _cpu(args: argparse.Namespace, cpu: int) -> int | None:
    """`cpu`, or None (no pinning) under `--unpinned`."""
    return None if getattr(args, "unpinned", False) else cpu


def descendants(root: int) -> list[int]:
    """`root` and all its live descendant pids, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo and len(found) < 10_000:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu_by_name(root: int | None) -> dict[str, float]:
    """user+sys CPU seconds of `root`'s process tree (incl. reaped children), by process name."""
    by_name: dict[str, float] = {}
    if root is None:
        return by_name
    for pid in descendants(root):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            name = stat.split("(", 1)[1].rsplit(")", 1)[0]
            fields = stat.rsplit(")", 1)[1].split()
            ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            by_name[name] = by_name.get(name, 0.0) + ticks / CLK_TCK
    return by_name


def tree_cpu_s(root: int | None) -> float:
    """user+sys CPU seconds of `root`'s process tree."""
    return sum(tree_cpu_by_name(root).values())


def start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (to tell it from a later process reusing the pid)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def stop_tree(proc: subprocess.Popen[bytes], grace_s: float = 20.0) -> None:
    """SIGTERM the leader (graceful shutdown), then SIGKILL its group and every pid of its tree."""
    if proc.poll() is not None:
        return
    tree = {pid: start_time(pid) for pid in descendants(proc.pid)}
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace_s)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the leader's group, even once the leader is gone
    for pid, started in tree.items():
        if pid != proc.pid and started is not None and start_time(pid) == started:
            for kill in (os.killpg, os.kill):  # Ray workers lead groups of their own
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


async def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Poll GET `url` until it answers 200; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    auth = {"Authorization": "Bearer bench"}  # the emulator wants one; the gateway ignores it
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout, headers=auth) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):
                async with http.get(url) as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout_s:.0f} s")


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (0 when empty)."""
    if not sorted_ms:
        return 0.0
    return sorted_ms[min(len(sorted_ms) - 1, max(0, round(q / 100 * len(sorted_ms)) - 1))]


Sample = dict[str, float] | str  # measured ms by name, or an error message


async def closed_loop(
    total: int, concurrency: int, send: Callable[[], Awaitable[Sample]]
) -> dict[str, Any]:
    """`concurrency` workers call `send` until `total` were issued; percentiles per measure.

    `ms` (the whole request) decides the throughput; other measures get p50/p99 too.
    """
    samples: dict[str, list[float]] = {"ms": []}
    errors: list[str] = []
    issued = 0
    deadline = time.monotonic() + PHASE_TIMEOUT_S

    async def worker() -> None:
        nonlocal issued
        while issued < total and time.monotonic() < deadline:
            issued += 1
            try:
                sample = await send()
            except (TimeoutError, aiohttp.ClientError) as exc:
                sample = f"{type(exc).__name__}: {exc}"
            if isinstance(sample, str):
                errors.append(sample)
                continue
            for name, ms in sample.items():
                samples.setdefault(name, []).append(ms)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - start
    out: dict[str, Any] = {
        "requests": issued,
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "wall_s": wall,
        "rps": len(samples["ms"]) / wall if wall else 0.0,
    }
    for name, values in samples.items():
        values.sort()
        prefix = "" if name == "ms" else f"{name}_"
        out[f"{prefix}p50_ms"], out[f"{prefix}p99_ms"] = (
            percentile(values, 50),
            percentile(values, 99),
        )
    return out


async def run_load(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    total: int,
    concurrency: int,
    ok: Callable[[bytes], bool],
    spread: list[tuple[str, dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """Closed loop of whole requests: latency of each, errors, throughput. With `spread`
    ((url, headers) of several tenants), the requests go to each in turn instead."""
    payload = json.dumps(body).encode()
    turns = itertools.cycle(
        [(u, {"Content-Type": "application/json", **h}) for u, h in spread or [(url, headers)]]
    )

    async def send() -> Sample:
        target, hdrs = next(turns)
        t0 = time.perf_counter()
        async with http.post(target, data=payload, headers=hdrs) as resp:
            data = await resp.read()
            if resp.status != 200 or not ok(data):
                return f"HTTP {resp.status}: {data[:500]!r}"
        return {"ms": (time.perf_counter() - t0) * 1000}

    return await closed_loop(total, concurrency, send)


FIRST_CONTENT = {
    "direct-stream": re.compile(rb'"content":"[^"]'),
    "gateway-stream": re.compile(rb"^event: content_chunk"),
}


async def run_stream_load(
    http: aiohttp.ClientSession,
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    total: int,
    concurrency: int,
    first_content: re.Pattern[bytes],
) -> dict[str, Any]:
    """Closed loop of streams: time to the first content chunk (`ttft`) and to the end."""
    payload = json.dumps(body).encode()
    hdrs = {"Content-Type": "application/json", **headers}

    async def send() -> Sample:
        t0 = time.perf_counter()
        first: float | None = None
        sample: dict[str, float] = {}
        completing = False
        async with http.post(url, data=payload, headers=hdrs) as resp:
            if resp.status != 200:
                return f"HTTP {resp.status}: {(await resp.read())[:300]!r}"
            async for line in resp.content:
                if first is None and first_content.search(line):
                    first = (time.perf_counter() - t0) * 1000
                if completing and line.startswith(b"data:"):
                    sample = stream_phases(line[5:])
                completing = line.startswith(b"event: execution_complete")
        if first is None:
            return "stream carried no content"
        return {"ms": (time.perf_counter() - t0) * 1000, "ttft": first, **sample}

    return await closed_loop(total, concurrency, send)


def stream_phases(data: bytes) -> dict[str, float]:
    """Where a gateway stream's first content chunk came from, by its `execution_complete`
    event (ms): `start_write` (the flushed start), `actor_ttft` (from the tenant actor's start
    of the run to the first content) and `provider_ttft` (from sending the provider request
    to its first content)."""
    meta = json.loads(data).get("metadata") or {}
    attempts = meta.get("attempt_log") or [{}]
    phases = {
        "start_write": (meta.get("timings_ms") or {}).get("start_write"),
        "actor_ttft": meta.get("ttft_ms"),
        "provider_ttft": attempts[-1].get("ttft_ms"),
    }
    return {k: float(v) for k, v in phases.items() if v is not None}


class GatewayCheck:
    """Counts an execute result only when it completed; sums where its time went."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self.count = 0

    def __call__(self, data: bytes) -> bool:
        try:
            result = json.loads(data)
        except ValueError:
            return False
        if not isinstance(result, dict) or result.get("status") != "completed":
            return False
        for phase, ms in (result.get("metadata", {}).get("timings_ms") or {}).items():
            self.timings[phase] = self.timings.get(phase, 0.0) + ms
        self.count += 1
        return True

    def take_means(self) -> dict[str, float]:
        """Mean ms per phase since the last call, and reset."""
        means = {k: v / self.count for k, v in self.timings.items()} if self.count else {}
        self.timings, self.count = {}, 0
        return means


def bench_config(tmp: Path, endpoints: int = 1) -> Path:
    """The default config with limits raised out of the way (we measure the gateway, not
    them); with `endpoints` > 1, OpenAI split into that many endpoints of equal weight."""
    import yaml

    data = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    for provider in data["providers"].values():
        provider.update(requests_per_minute=100_000_000, max_concurrency=100_000)
    if endpoints > 1:
        data["providers"]["openai"]["endpoints"] = [{"name": f"e{i}"} for i in range(endpoints)]
    data["tenant_defaults"].update(
        requests_per_minute=100_000_000, max_concurrent_executions=100_000
    )
    path = tmp / "bench.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if not k.startswith("_")}))
    return path


async def post_json(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> dict[str, Any]:
    """POST `body`; the JSON answer, which must come with 201."""
    async with http.post(url, json=body, headers=headers) as resp:
        if resp.status != 201:
            raise RuntimeError(f"POST {url}: {resp.status} {await resp.text()}")
        return dict(await resp.json())


async def new_tenant(http: aiohttp.ClientSession, base: str, admin_token: str) -> dict[str, str]:
    """Create a tenant; the headers that act as it (its id and first API key)."""
    admin = {"Authorization": f"Bearer {admin_token}"}
    tenant = await post_json(http, f"{base}/api/v1/admin/tenants", {"name": "bench"}, admin)
    return {"X-Tenant-ID": tenant["tenant"]["id"], "Authorization": f"Bearer {tenant['api_key']}"}


async def timed_posts(
    http: aiohttp.ClientSession,
    target: Callable[[], tuple[str, dict[str, str]]],
    payload: bytes,
    status: int,
    total: int,
    concurrency: int,
) -> dict[str, Any]:
    """Closed loop of POSTs of `payload` to where `target()` says (URL, extra headers), each
    answered with `status`."""

    async def send() -> Sample:
        url, headers = target()
        t0 = time.perf_counter()
        async with http.post(url, data=payload, headers=headers) as resp:
            data = await resp.read()
            if resp.status != status:
                return f"HTTP {resp.status}: {data[:300]!r}"
        return {"ms": (time.perf_counter() - t0) * 1000}

    return await closed_loop(total, concurrency, send)


async def setup_agent(base: str, admin_token: str) -> tuple[str, dict[str, str]]:
    """Create a tenant and an agent; return the execute URL and the tenant's headers."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        headers = await new_tenant(http, base, admin_token)
        body = {"name": "bench", "model": "gpt-4o-mini", "system_prompt": "You are terse."}
        agent = await post_json(http, f"{base}/api/v1/agents", body, headers)
    return f"{base}/api/v1/agents/{agent['id']}/execute", headers


@contextlib.contextmanager
def services(args: argparse.Namespace, tmp: Path) -> Iterator[dict[str, Any]]:
    """Start the emulator and (unless skipped) the gateway; always stop both."""
    procs: list[subprocess.Popen[bytes]] = []
    sink = None
    try:
        if args.otlp == "sink":
            sys.path.insert(0, str(ROOT))
            from tests.support.otlp import OtlpReceiver

            sink = OtlpReceiver(decode=False).start()
        emu_port = free_port()
        emu_log = (tmp / "emulator.log").open("wb")
        script = getattr(args, "emulator_script", None)
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.emulator",
                    "--port",
                    str(emu_port),
                    *(["--script", json.dumps(script)] if script else []),
                ],
                cwd=ROOT,
                stdout=emu_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=pin_to(_cpu(args, 1)),
            )
        )
        info: dict[str, Any] = {
            "emulator": f"http://{HOST}:{emu_port}/v1",
            "gateway": None,
            "gateway_pid": None,
            "admin_token": secrets.token_urlsafe(24),
            "sink": sink,
        }
        if not args.skip_gateway:
            gw_port = free_port()
            env = {
                **os.environ,
                "OPENAI_BASE_URL": info["emulator"],
                "OPENAI_API_KEY": "bench",
                "CB_ADMIN_TOKEN": info["admin_token"],
                "CB_HOST": HOST,
                "CB_PORT": str(gw_port),
                "CB_DATA_DIR": str(tmp / "data"),
                "RAY_worker_niceness": "0",
                "CB_CONFIG": str(bench_config(tmp, args.endpoints)),
                "CB_SERVE_MODE": args.mode,
            }
            env.pop("RAY_ADDRESS", None)
            env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)  # traces only with --otlp
            if args.otlp:
                env["OTEL_EXPORTER_OTLP_ENDPOINT"] = sink.endpoint if sink else args.otlp
            if args.postgres:
                env["CB_DATABASE_URL"] = args.postgres
            gw_log = (tmp / "gateway.log").open("wb")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "serve_app.py"],
                    cwd=ROOT,
                    env=env,
                    stdout=gw_log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=pin_to(_cpu(args, 0)),
                )
            )
            info.update(gateway=f"http://{HOST}:{gw_port}", gateway_pid=procs[-1].pid)
        yield {**info, "procs": procs}
    finally:
        for proc in reversed(procs):
            stop_tree(proc)
        if sink is not None:
            sink.stop()


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    """Wait for the services, create the agent, and run every (concurrency, target) phase."""
    emu_proc, *gw = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    targets: list[tuple[str, str, dict[str, Any], dict[str, str], Callable[[bytes], bool]]] = [
        (
            "direct",
            f"{svc['emulator']}/chat/completions",
            DIRECT_BODY,
            {"Authorization": "Bearer bench"},
            lambda _: True,
        ),
    ]
    if gw:
        t0 = time.monotonic()
        await wait_http(f"{svc['gateway']}/ready", gw[0], READY_TIMEOUT_S)
        print(f"gateway ready after {time.monotonic() - t0:.1f} s", flush=True)
        url, headers = await setup_agent(svc["gateway"], svc["admin_token"])
        spread = [(url, headers)] + [
            await setup_agent(svc["gateway"], svc["admin_token"]) for _ in range(args.tenants - 1)
        ]
        check = GatewayCheck()
        targets.append(("gateway", url, {"prompt": "hello"}, headers, check))
    results = []
    lag: dict[str, list[float]] = {}
    sampler = (
        asyncio.create_task(sample_lag(svc["gateway"], svc["admin_token"], lag)) if gw else None
    )
    for conc in args.concurrency:
        total = args.requests or (2000 if conc > 1 else 500)
        connector = aiohttp.TCPConnector(limit=max(conc, 1) * 2)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for name, url, body, headers, ok in targets:
                many = spread if name == "gateway" else None
                # every tenant's actor started (and twice served) before the measured phase
                warm = max(WARMUP, 2 * len(many or ()))
                await run_load(http, url, body, headers, warm, conc, ok, many)
                if isinstance(ok, GatewayCheck):
                    ok.take_means()
                before = tree_cpu_by_name(svc["gateway_pid"])
                res = await run_load(http, url, body, headers, total, conc, ok, many)
                after = tree_cpu_by_name(svc["gateway_pid"])
                per_process = {
                    k: (v - before.get(k, 0.0)) * 1000 / max(res["requests"], 1)
                    for k, v in after.items()
                    if v - before.get(k, 0.0) > 0.005
                }
                cpu = sum(after.values()) - sum(before.values())
                res.update(
                    target=name,
                    concurrency=conc,
                    gateway_cpu_s=cpu,
                    gateway_cpu_ms_per_req=cpu * 1000 / max(res["requests"], 1),
                    actor_timings_ms=ok.take_means() if isinstance(ok, GatewayCheck) else {},
                    cpu_ms_per_req_by_process=per_process,
                )
                results.append(res)
                print(
                    f"  {name:8} C={conc:<3} done: {res['rps']:.0f} req/s, {res['errors']} errors",
                    flush=True,
                )
                if res["first_error"]:
                    print(f"    first error: {res['first_error']}", flush=True)
    if args.stream:
        stream_targets = [
            (
                "direct-stream",
                f"{svc['emulator']}/chat/completions",
                {**DIRECT_BODY, "stream": True, "stream_options": {"include_usage": True}},
                {"Authorization": "Bearer bench"},
            ),
        ]
        if gw:
            stream_targets.append(("gateway-stream", url + "/stream", {"prompt": "hello"}, headers))
        for conc in args.concurrency:
            total = args.requests or (2000 if conc > 1 else 500)
            connector = aiohttp.TCPConnector(limit=max(conc, 1) * 2)
            timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
                for name, target, body, hdrs in stream_targets:
                    marker = FIRST_CONTENT[name]
                    await run_stream_load(http, target, body, hdrs, WARMUP, conc, marker)
                    cpu0 = tree_cpu_s(svc["gateway_pid"])
                    res = await run_stream_load(http, target, body, hdrs, total, conc, marker)
                    cpu = tree_cpu_s(svc["gateway_pid"]) - cpu0
                    res.update(
                        target=name,
                        concurrency=conc,
                        gateway_cpu_s=cpu,
                        gateway_cpu_ms_per_req=cpu * 1000 / max(res["requests"], 1),
                        actor_timings_ms={},
                        cpu_ms_per_req_by_process={},
                    )
                    results.append(res)
                    print(
                        f"  {name:14} C={conc:<3} done: {res['rps']:.0f} streams/s, "
                        f"{res['errors']} errors",
                        flush=True,
                    )
                    if res["first_error"]:
                        print(f"    first error: {res['first_error']}", flush=True)
    if sampler is not None:
        sampler.cancel()
    idle = await idle_cpu(svc["gateway_pid"], args.idle) if gw and args.idle else None
    sink = svc.get("sink")
    traces = {"requests": sink.requests, "bytes": sink.bytes} if sink is not None else None
    return {
        "results": results,
        "projection_lag_s": lag_figures(lag),
        "otlp_sink": traces,
        "idle_cpu_ms_per_s": idle,
    }


async def idle_cpu(root: int | None, seconds: float) -> dict[str, float]:
    """CPU ms per second of each gateway process while no request arrives (after the load,
    its actors still alive): what a quiet tenant and the gateway cost by their clocks."""
    await asyncio.sleep(2.0)  # what the load left in flight settles
    before = tree_cpu_by_name(root)
    await asyncio.sleep(seconds)
    after = tree_cpu_by_name(root)
    spent = {k: (v - before.get(k, 0.0)) * 1000 / seconds for k, v in after.items()}
    return {k: round(v, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v > 0.05}


async def sample_lag(base: str, admin_token: str, into: dict[str, list[float]]) -> None:
    """Every LAG_SAMPLE_S while the load runs: each projection's lag in seconds (the age of
    the oldest event it has not folded), from `GET /api/v1/admin/projections`."""
    headers = {"Authorization": f"Bearer {admin_token}"}
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{base}/api/v1/admin/projections", headers=headers) as r:
                    for p in (await r.json())["projections"]:
                        into.setdefault(p["name"], []).append(p["lag_seconds"])
            except (aiohttp.ClientError, KeyError, ValueError):
                pass
            await asyncio.sleep(LAG_SAMPLE_S)


def lag_figures(lag: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    out = {}
    for name, samples in lag.items():
        ordered = sorted(s * 1000 for s in samples)
        out[name] = {
            "samples": len(ordered),
            "p50_s": percentile(ordered, 50) / 1000,
            "p99_s": percentile(ordered, 99) / 1000,
            "max_s": ordered[-1] / 1000,
        }
    return out


def overheads(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per concurrency: what the gateway adds over the direct call."""
    out = []
    direct = {r["concurrency"]: r for r in results if r["target"] == "direct"}
    for g in (r for r in results if r["target"] == "gateway"):
        d = direct[g["concurrency"]]
        out.append(
            {
                "concurrency": g["concurrency"],
                "p50_ms": g["p50_ms"] - d["p50_ms"],
                "p99_ms": g["p99_ms"] - d["p99_ms"],
                "throughput_ratio": g["rps"] / d["rps"] if d["rps"] else 0.0,
            }
        )
    return out


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    import ray  # imported late: only its version is needed

    return {
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "ray": ray.__version__,
        "aiohttp": aiohttp.__version__,
        "kernel": platform.release(),
        "loadavg_1m_before": os.getloadavg()[0],
    }


def report(meta: dict[str, Any], results: list[dict[str, Any]], over: list[dict[str, Any]]) -> None:
    """Print the figures as a table."""
    print(
        f"\n{meta['date']}  nproc={meta['nproc']}  python {meta['python']}  ray {meta['ray']}"
        f"  aiohttp {meta['aiohttp']}  load avg before {meta['loadavg_1m_before']:.2f}"
        + (
            "  (gateway, emulator and load unpinned)"
            if meta.get("cpus") == "shared"
            else "  (gateway on CPU 0; emulator + load on CPU 1)"
        )
        + f"  serve mode: {meta.get('mode', '?')}"
    )
    print(
        f"{'target':14} {'C':>3} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'gw CPU ms/req':>14} {'TTFT p50':>9} {'TTFT p99':>9}"
    )
    for r in results:
        ttft = f" {r['ttft_p50_ms']:>9.2f} {r['ttft_p99_ms']:>9.2f}" if "ttft_p50_ms" in r else ""
        print(
            f"{r['target']:14} {r['concurrency']:>3} {r['requests']:>8} {r['errors']:>6} "
            f"{r['rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['gateway_cpu_ms_per_req']:>14.2f}{ttft}"
        )
    for o in over:
        print(
            f"gateway overhead C={o['concurrency']}: p50 +{o['p50_ms']:.2f} ms, "
            f"p99 +{o['p99_ms']:.2f} ms, throughput {o['throughput_ratio']:.2f}x direct"
        )
    streams = {(r["target"], r["concurrency"]): r for r in results if "ttft_p50_ms" in r}
    for (target, conc), g in streams.items():
        d = streams.get(("direct-stream", conc))
        if target == "gateway-stream" and d:
            print(
                f"stream overhead C={conc}: first content chunk p50 "
                f"+{g['ttft_p50_ms'] - d['ttft_p50_ms']:.2f} ms, p99 "
                f"+{g['ttft_p99_ms'] - d['ttft_p99_ms']:.2f} ms; streams/s "
                f"{g['rps'] / d['rps'] if d['rps'] else 0:.2f}x direct"
            )
    print(
        "where the gateway's time goes (mean ms inside the tenant actor; the rest of the"
        " latency is the ingress, Serve and the actor hop):"
    )
    for r in results:
        if "actor_ttft_p50_ms" in r:
            print(
                f"  stream C={r['concurrency']}, p50 ms: first content at the client "
                f"{r['ttft_p50_ms']:.2f}; in the tenant actor from the run's start "
                f"{r['actor_ttft_p50_ms']:.2f} (its flushed start write "
                f"{r.get('start_write_p50_ms', 0.0):.2f}; the provider's first content "
                f"{r.get('provider_ttft_p50_ms', 0.0):.2f} after the request)"
            )
        if r.get("actor_timings_ms"):
            parts = ", ".join(f"{k} {v:.2f}" for k, v in r["actor_timings_ms"].items())
            print(f"  C={r['concurrency']}: {parts}")
            top = sorted(r["cpu_ms_per_req_by_process"].items(), key=lambda kv: -kv[1])[:6]
            print(
                "    CPU ms/request by process: "
                + ", ".join(f"{name} {ms:.2f}" for name, ms in top)
            )


def run_with_services(
    args: argparse.Namespace,
    bench_fn: Callable[[argparse.Namespace, dict[str, Any]], Awaitable[Any]],
) -> Any | None:
    """Start the services, run `bench_fn` against them and stop them; None if it failed
    (the tail of the gateway's log is printed)."""
    with tempfile.TemporaryDirectory(prefix="cb-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        try:
            with services(args, tmp) as svc:
                return asyncio.run(bench_fn(args, svc))
        except (Exception, KeyboardInterrupt, SystemExit) as exc:
            log = tmp / "gateway.log"
            if log.exists():
                print("--- gateway.log (tail) ---\n" + log.read_text(errors="replace")[-4000:])
            print(f"benchmark failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return None


def run_beside_emulator(
    args: argparse.Namespace,
    bench_fn: Callable[[argparse.Namespace, dict[str, Any]], Awaitable[Any]],
    report_fn: Callable[[dict[str, Any], Any], None],
    script: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> int:
    """A bench of one gateway (direct ingress, SQLite, no traces) beside the emulator
    answering by `script` after `args.provider_ms`: run `bench_fn`, print it with
    `report_fn(meta, result)`, write `args.json`."""
    args.skip_gateway, args.otlp, args.postgres, args.mode = False, None, None, "direct"
    args.emulator_script = script
    pin_to(1)()
    result = run_with_services(args, bench_fn)
    if result is None:
        return 1
    result.update(extra or {})
    meta = {**machine(), "provider_ms": args.provider_ms}
    report_fn(meta, result)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, **result}, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the benchmark, print (and optionally save) the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=0,
        help="measured requests per phase (default 2000 for C>1, 500 for C=1)",
    )
    parser.add_argument(
        "--concurrency", default="1,32", type=lambda s: [int(c) for c in s.split(",") if c.strip()]
    )
    parser.add_argument("--postgres", metavar="URL", help="CB_DATABASE_URL for the gateway")
    parser.add_argument(
        "--tenants", type=int, default=1, help="spread the gateway's whole requests over N tenants"
    )
    parser.add_argument(
        "--endpoints", type=int, default=1, help="OpenAI as N endpoints (balanced, same emulator)"
    )
    parser.add_argument("--skip-gateway", action="store_true", help="only measure the emulator")
    parser.add_argument(
        "--stream", action="store_true", help="also stream: time to first content chunk, streams/s"
    )
    parser.add_argument(
        "--mode",
        choices=("proxy", "direct"),
        default="direct",
        help="CB_SERVE_MODE: through Serve's proxy, or Serve direct ingress",
    )
    parser.add_argument(
        "--otlp",
        nargs="?",
        const="sink",
        metavar="URL",
        help="traces on, exported to URL (an OTLP/HTTP endpoint) or, with no URL, to a sink here",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=0.0,
        metavar="S",
        help="after the load, the gateway's CPU per process over S seconds with no requests",
    )
    parser.add_argument(
        "--unpinned",
        action="store_true",
        help="pin nothing: gateway, emulator and load share every CPU (issue 15's tenant goal)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if not 0 <= args.requests <= 1_000_000 or not all(1 <= c <= 1024 for c in args.concurrency):
        parser.error("--requests must be 0..1e6 and concurrencies 1..1024")
    pin_to(_cpu(args, 1))()  # the load generator shares CPU 1 with the emulator
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind, so children get stopped
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    meta = {**machine(), "mode": args.mode, "tenants": args.tenants, "endpoints": args.endpoints,
            "cpus": "shared" if args.unpinned else "pinned",
            "store": "postgres" if args.postgres else "sqlite",
            "traces": "on" if args.otlp else "off"}  # fmt: skip
    out = run_with_services(args, bench)
    if out is None:
        return 1
    over = overheads(out["results"])
    report(meta, out["results"], over)
    print(f"traces: {meta['traces']}", end="")
    sunk = out.get("otlp_sink")
    print(f" ({sunk['requests']} exports, {sunk['bytes']} bytes to the sink)" if sunk else "")
    for name, figures in out["projection_lag_s"].items():
        print(
            f"projection lag under load, {name}: p50 {figures['p50_s']:.3f} s, "
            f"p99 {figures['p99_s']:.3f} s, max {figures['max_s']:.3f} s "
            f"({figures['samples']} samples)"
        )
    idle = out.get("idle_cpu_ms_per_s")
    if idle is not None:
        print(f"idle after the load, CPU ms per second: {sum(idle.values()):.1f} in all; "
              + ", ".join(f"{k} {v}" for k, v in idle.items()))  # fmt: skip
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": meta,
                    "args": vars(args),
                    "results": out["results"],
                    "overhead": over,
                    "projection_lag_s": out["projection_lag_s"],
                    "idle_cpu_ms_per_s": idle,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
