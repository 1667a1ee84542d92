"""What a collaboration run costs beside the same steps driven by the client.

The emulator answers each call after `--provider-ms`; the gateway is started as
`bench/bench_execute.py` starts it. One shape, the PED's fan-out and synthesis: two steps
side by side on the run's input, then a third on both outputs (so two provider calls on the
critical path). Closed loops at C=1 and C=`--concurrency`:

- `client`: the client runs it itself over `POST …/execute` (the two first steps at once,
  then the third with their answers in its prompt): three requests, the baseline;
- `run`: `POST /api/v1/collaborations/{id}/run`, whole (four events per step and the run's
  own, a streamed execution per step, every step's start and end recorded);
- `run/stream`: `POST …/run/stream` read to its end; `ttfc` is the time to the first
  relayed content chunk.

    python bench/bench_collaborations.py [--runs N] [--concurrency 8] [--provider-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    closed_loop,
    new_tenant,
    post_json,
    run_beside_emulator,
    tree_cpu_s,
    wait_http,
)

PROMPT = "the quarter's figures"


async def setup(base: str, admin_token: str) -> dict[str, Any]:
    """A tenant with an agent and the saved diamond over it."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        headers = await new_tenant(http, base, admin_token)
        body = {"name": "bench", "model": "gpt-4o-mini", "system_prompt": "You are terse."}
        agent = await post_json(http, f"{base}/api/v1/agents", body, headers)
        step = {"agent_id": agent["id"]}
        definition = {
            "name": "diamond",
            "inputs": {"topic": None},
            "steps": [
                {**step, "id": "risk", "input": "Risks of {{inputs.topic}}"},
                {**step, "id": "upside", "input": "Upside of {{inputs.topic}}"},
                {
                    **step,
                    "id": "decide",
                    "depends_on": ["risk", "upside"],
                    "input": "Decide: {{steps.risk.output}} / {{steps.upside.output}}",
                },
            ],
        }
        saved = await post_json(http, f"{base}/api/v1/collaborations", definition, headers)
    return {"agent": agent["id"], "collaboration": saved["id"], "headers": headers}


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/health", gw_proc, 120)
    base = svc["gateway"]
    made = await setup(base, svc["admin_token"])
    headers = {"Content-Type": "application/json", **made["headers"]}
    execute = f"{base}/api/v1/agents/{made['agent']}/execute"
    run_url = f"{base}/api/v1/collaborations/{made['collaboration']}/run"
    run_body = json.dumps({"inputs": {"topic": PROMPT}}).encode()
    rows: list[dict[str, Any]] = []

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:

        async def answer(prompt: str) -> str:
            async with http.post(execute, json={"prompt": prompt}, headers=headers) as resp:
                body = await resp.json()
                if resp.status != 200:
                    raise aiohttp.ClientError(f"HTTP {resp.status}: {body}")
                return str(body["response"]["content"])

        async def client() -> dict[str, float] | str:
            t0 = time.perf_counter()
            risk, upside = await asyncio.gather(
                answer(f"Risks of {PROMPT}"), answer(f"Upside of {PROMPT}")
            )
            await answer(f"Decide: {risk} / {upside}")
            return {"ms": (time.perf_counter() - t0) * 1000}

        async def whole() -> dict[str, float] | str:
            t0 = time.perf_counter()
            async with http.post(run_url, data=run_body, headers=headers) as resp:
                body = await resp.json()
            if resp.status != 200 or body.get("status") != "completed":
                return f"HTTP {resp.status}: {str(body)[:300]}"
            return {"ms": (time.perf_counter() - t0) * 1000}

        async def streamed() -> dict[str, float] | str:
            t0 = time.perf_counter()
            first = None
            async with http.post(run_url + "/stream", data=run_body, headers=headers) as resp:
                async for line in resp.content:
                    if first is None and line.startswith(b"event: content_chunk"):
                        first = (time.perf_counter() - t0) * 1000
                    if line.startswith(b"event: error"):
                        return "the run ended with an error event"
            return {"ms": (time.perf_counter() - t0) * 1000, "ttfc": first or 0.0}

        for concurrency in (1, args.concurrency):
            total = args.runs or (100 if concurrency == 1 else 400)
            for name, send in (("client", client), ("run", whole), ("run/stream", streamed)):
                cpu = tree_cpu_s(svc["gateway_pid"])
                result = await closed_loop(total, concurrency, send)
                spent = tree_cpu_s(svc["gateway_pid"]) - cpu
                done = result["requests"] - result["errors"]
                rows.append(
                    {
                        "phase": name,
                        "concurrency": concurrency,
                        **result,
                        "cpu_ms_per_run": spent * 1000 / done if done else 0.0,
                    }
                )
    return {"rows": rows}


def report(meta: dict[str, Any], result: dict[str, Any]) -> None:
    print(
        f"# collaborations, {meta['date']}, {meta['nproc']} CPUs, provider {meta['provider_ms']} ms"
    )
    print(
        f"{'phase':<12}{'C':>4}{'runs/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'ttfc p50':>10}"
        f"{'CPU ms/run':>12}{'errors':>8}"
    )
    for r in result["rows"]:
        ttfc = f"{r['ttfc_p50_ms']:10.2f}" if "ttfc_p50_ms" in r else f"{'—':>10}"
        print(
            f"{r['phase']:<12}{r['concurrency']:>4}{r['rps']:9.1f}{r['p50_ms']:9.2f}"
            f"{r['p99_ms']:9.2f}{ttfc}{r['cpu_ms_per_run']:12.2f}{r['errors']:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=0, help="per phase (default 100, 400)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--provider-ms", type=float, default=50.0)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    noted = {"match": "", "content": "Noted.", "delay": args.provider_ms / 1000}
    return run_beside_emulator(args, bench, report, [noted])


if __name__ == "__main__":
    sys.exit(main())
