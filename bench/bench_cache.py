"""What the response cache saves, and what guardrails and idempotency keys cost, end to end.

Starts the provider emulator (answering after `--provider-ms`, a stand-in for a model's time)
and the gateway (`bench/bench_execute.py`'s `services`), then runs closed-loop load:

- `direct`: straight at the emulator, the floor of a provider call;
- `gateway`: `POST …/execute` of an agent without cache or guardrails (the baseline);
- `cache-hit`: an agent with `cache: exact`, the prompt answered once before (every request
  is a hit: no provider call);
- `guardrails`: an agent with input and output `pii` redaction and a keyword flag, on a prompt
  that holds an e-mail address and a card number (each request redacts both);
- `idempotency`: the baseline agent with a new `Idempotency-Key` on every request (each one
  claims its key: one more event written);

and prints each one's latency, throughput and the gateway's CPU per request beside the
baseline, plus the guardrail screening's own cost measured in-process.

    python bench/bench_cache.py [--requests N] [--concurrency 1,16] [--provider-ms 300]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    DIRECT_BODY,
    new_tenant,
    post_json,
    run_beside_emulator,
    run_load,
    timed_posts,
    tree_cpu_s,
    wait_http,
)

PROMPT = "Please write to jane.doe@example.com about card 4111 1111 1111 1111 today."
GUARDRAILS = {
    "input": [
        {"type": "pii", "action": "redact", "kinds": ["email", "card"]},
        {"type": "keywords", "action": "flag", "words": ["wire transfer"]},
    ],
    "output": [{"type": "pii", "action": "redact", "kinds": ["email", "phone"]}],
}


async def setup(base: str, admin_token: str) -> dict[str, Any]:
    """A tenant with three agents: plain, cached, guarded; the cached one warmed."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        headers = await new_tenant(http, base, admin_token)
        common = {"model": "gpt-4o-mini", "system_prompt": "You are terse."}
        urls = {}
        for name, extra in (
            ("gateway", {}),
            ("cache-hit", {"cache": {"mode": "exact", "ttl_s": 3600}}),
            ("guardrails", {"guardrails": GUARDRAILS}),
        ):
            agent = await post_json(
                http, f"{base}/api/v1/agents", {"name": name, **common, **extra}, headers
            )
            urls[name] = f"{base}/api/v1/agents/{agent['id']}/execute"
        async with http.post(urls["cache-hit"], json={"prompt": PROMPT}, headers=headers) as r:
            assert r.status == 200, await r.text()
        await asyncio.sleep(0.5)  # the entry is written after the answer
    return {"urls": urls, "headers": headers}


async def keyed_load(
    http: aiohttp.ClientSession, url: str, headers: dict[str, str], total: int, concurrency: int
) -> dict[str, Any]:
    """Closed loop of whole requests, each with a new Idempotency-Key."""
    payload = json.dumps({"prompt": PROMPT}).encode()
    numbers = itertools.count()

    def target() -> tuple[str, dict[str, str]]:
        return url, {"Content-Type": "application/json", **headers,
                     "Idempotency-Key": f"bench-{uuid.uuid4().hex}-{next(numbers)}"}  # fmt: skip

    return await timed_posts(http, target, payload, 200, total, concurrency)


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/health", gw_proc, 120)
    made = await setup(svc["gateway"], svc["admin_token"])
    urls, headers = made["urls"], made["headers"]
    body = {"prompt": PROMPT}
    rows = []
    limits = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=limits) as http:
        for concurrency in args.concurrency:
            total = args.requests or (200 if concurrency == 1 else 1000)
            phases = [
                ("direct", lambda c=concurrency, n=total: run_load(
                    http, f"{svc['emulator']}/chat/completions", DIRECT_BODY,
                    {"Authorization": "Bearer bench"}, n, c, lambda _: True)),
                *[(name, lambda c=concurrency, n=total, u=urls[name]: run_load(
                    http, u, body, headers, n, c, lambda d: b'"completed"' in d))
                  for name in ("gateway", "cache-hit", "guardrails")],
                ("idempotency", lambda c=concurrency, n=total: keyed_load(
                    http, urls["gateway"], headers, n, c)),
            ]  # fmt: skip
            for name, run in phases:
                await run()  # warm-up pass of the same size, not counted
                cpu0 = tree_cpu_s(svc["gateway_pid"])
                out = await run()
                cpu = tree_cpu_s(svc["gateway_pid"]) - cpu0
                done = out["requests"] - out["errors"]
                per_req = cpu * 1000 / done if done else None
                rows.append({"target": name, "concurrency": concurrency, **out,
                             "gateway_cpu_ms_per_req": per_req})  # fmt: skip
    return {"rows": rows, "screening": screening_cost()}


def screening_cost(rounds: int = 2000) -> dict[str, float]:
    """The guardrails' own CPU per request, in process: input screening of the bench prompt,
    output screening of a 600-character answer with a phone number in each sentence and of
    one in plain prose, and each one streamed in 8-character chunks through a guard."""
    from domain.guardrails import Guardrails, StreamGuard, screen_input, screen_output

    checks = Guardrails.parse(GUARDRAILS)
    numbers = ("The card ending 1111 is fine. Call +44 20 7946 0958 if needed. " * 10)[:600]
    prose = ("Ray Serve scales model serving across a cluster, with autoscaling. " * 10)[:600]

    def per_call_us(fn: Any) -> float:
        start = time.perf_counter()
        for _ in range(rounds):
            fn()
        return round((time.perf_counter() - start) / rounds * 1e6, 1)

    def streamed(answer: str) -> None:
        guard = StreamGuard(list(checks.output), {})
        for i in range(0, len(answer), 8):
            guard.feed(answer[i : i + 8])
        guard.finish()

    return {
        "input_us": per_call_us(lambda: screen_input([PROMPT], list(checks.input))),
        "output_numbers_us": per_call_us(lambda: screen_output(numbers, list(checks.output), {})),
        "output_prose_us": per_call_us(lambda: screen_output(prose, list(checks.output), {})),
        "stream_numbers_us": per_call_us(lambda: streamed(numbers)),
        "stream_prose_us": per_call_us(lambda: streamed(prose)),
    }


def report(meta: dict[str, Any], result: dict[str, Any]) -> None:
    print(
        f"# bench_cache  {meta['date']}  nproc={meta['nproc']}  provider {meta['provider_ms']} ms"
    )
    print(f"{'target':<12} {'C':>3} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'cpu ms/req':>10} {'errors':>6}")  # fmt: skip
    for r in result["rows"]:
        cpu = r["gateway_cpu_ms_per_req"]
        print(f"{r['target']:<12} {r['concurrency']:>3} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} "
              f"{r['p99_ms']:>8.2f} {cpu if cpu is None else round(cpu, 2)!s:>10} "
              f"{r['errors']:>6}")  # fmt: skip
    s = result["screening"]
    print(
        f"in-process guardrails: input {s['input_us']} µs, output {s['output_us']} µs, "
        f"a {s['stream_chunks']}-chunk stream {s['stream_guard_us']} µs"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the phases (or, with --screening-only, the in-process part) and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument(
        "--concurrency", default="1,16", type=lambda s: [int(c) for c in s.split(",") if c]
    )
    parser.add_argument("--provider-ms", type=float, default=300.0)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--screening-only", action="store_true", help="only the in-process part")
    args = parser.parse_args(argv)
    if args.screening_only:
        print(json.dumps(screening_cost(), indent=2))
        return 0
    noted = {"match": "", "content": "Noted.", "delay": args.provider_ms / 1000}
    return run_beside_emulator(args, bench, report, [noted])


if __name__ == "__main__":
    sys.exit(main())
