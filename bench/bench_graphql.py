"""What GraphQL costs beside REST: the same work through both doors, and the provider floor.

Starts the emulator and the gateway like `bench_execute.py` (gateway pinned to CPU 0,
emulator and load on CPU 1) and runs closed-loop load per concurrency:

- `direct`: a chat completion straight at the emulator (the floor);
- `rest-chat` / `gql-chat`: one completion through `POST /v1/chat/completions` and through
  the legacy `llmChatCompletion` mutation (both recorded as executions);
- `rest-agent` / `gql-agent`: one agent read through `GET /api/v1/agents/{id}` and through the
  legacy `agent(id)` query;
- `gql-agent-ext`: the same query with the §12.1 extension fields (endpoints, mappings, tool
  configurations, metrics and the last 5 executions).

    python bench/bench_graphql.py [--requests N] [--concurrency 1,16]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_execute import (
    DIRECT_BODY,
    READY_TIMEOUT_S,
    REQUEST_TIMEOUT_S,
    WARMUP,
    closed_loop,
    machine,
    pin_to,
    post_json,
    run_with_services,
    tree_cpu_s,
    wait_http,
)

CHAT = """mutation Chat($input: LlmChatCompletionInput!) {
  llmChatCompletion(input: $input) { id choices { message { content } } usage { totalTokens } }
}"""
AGENT = """query GetAgent($id: String!) {
  agent(id: $id) { id name llmConfig { temperature maxTokens } prompts { system } }
}"""
AGENT_EXT = """query GetAgent($id: String!) {
  agent(id: $id) {
    id name tenantId executionEndpoints { execute stream }
    virtualModelMappings { name strategy resolvesTo }
    toolConfigurations { name source }
    performanceMetrics(window: LAST_HOUR) { executions latencyMs { p50 } }
    executionHistory(first: 5) { edges { node { id status } } }
  }
}"""

Send = Callable[[], Awaitable[dict[str, float] | str]]


def sender(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    headers: dict[str, str],
    body: dict[str, Any] | None,
    ok: Callable[[Any], bool],
) -> Send:
    """One request per call: its latency, or why it failed."""
    payload = json.dumps(body).encode() if body is not None else None
    hdrs = {"Content-Type": "application/json", **headers}

    async def send() -> dict[str, float] | str:
        t0 = time.perf_counter()
        async with http.request(method, url, data=payload, headers=hdrs) as resp:
            data = await resp.read()
            if resp.status != 200:
                return f"HTTP {resp.status}: {data[:300]!r}"
            if not ok(json.loads(data)):
                return f"unexpected answer: {data[:300]!r}"
        return {"ms": (time.perf_counter() - t0) * 1000}

    return send


def graphql_ok(answer: Any) -> bool:
    return isinstance(answer, dict) and not answer.get("errors") and bool(answer.get("data"))


async def setup(base: str, admin_token: str) -> tuple[dict[str, str], str]:
    """A tenant and an agent; the tenant's headers and the agent's id."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        admin = {"Authorization": f"Bearer {admin_token}"}
        tenant = await post_json(http, f"{base}/api/v1/admin/tenants", {"name": "gql"}, admin)
        headers = {
            "X-Tenant-ID": tenant["tenant"]["id"],
            "Authorization": f"Bearer {tenant['api_key']}",
        }
        body = {"name": "bench", "model": "gpt-4o-mini", "system_prompt": "You are terse."}
        agent = await post_json(http, f"{base}/api/v1/agents", body, headers)
    return headers, agent["id"]


def targets(
    http: aiohttp.ClientSession, svc: dict[str, Any], headers: dict[str, str], agent_id: str
) -> list[tuple[str, Send]]:
    gw, gql = svc["gateway"], f"{svc['gateway']}/graphql"
    messages = DIRECT_BODY["messages"]
    chat_input = {"model": "gpt-4o-mini", "messages": messages}
    return [
        (
            "direct",
            sender(
                http, "POST", f"{svc['emulator']}/chat/completions",
                {"Authorization": "Bearer bench"}, DIRECT_BODY, lambda _: True,
            ),
        ),
        (
            "rest-chat",
            sender(
                http, "POST", f"{gw}/v1/chat/completions", headers,
                {"model": "gpt-4o-mini", "messages": messages}, lambda a: bool(a.get("choices")),
            ),
        ),
        (
            "gql-chat",
            sender(
                http, "POST", gql, headers,
                {"query": CHAT, "variables": {"input": chat_input}}, graphql_ok,
            ),
        ),
        (
            "rest-agent",
            sender(
                http, "GET", f"{gw}/api/v1/agents/{agent_id}", headers, None,
                lambda a: a.get("id") == agent_id,
            ),
        ),
        (
            "gql-agent",
            sender(
                http, "POST", gql, headers,
                {"query": AGENT, "variables": {"id": agent_id}}, graphql_ok,
            ),
        ),
        (
            "gql-agent-ext",
            sender(
                http, "POST", gql, headers,
                {"query": AGENT_EXT, "variables": {"id": agent_id}}, graphql_ok,
            ),
        ),
    ]  # fmt: skip


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> list[dict[str, Any]]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/ready", gw_proc, READY_TIMEOUT_S)
    headers, agent_id = await setup(svc["gateway"], svc["admin_token"])
    results = []
    for conc in args.concurrency:
        total = args.requests or (1000 if conc > 1 else 300)
        connector = aiohttp.TCPConnector(limit=max(conc, 1) * 2)
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            for name, send in targets(http, svc, headers, agent_id):
                await closed_loop(WARMUP, conc, send)
                cpu0 = tree_cpu_s(svc["gateway_pid"])
                res = await closed_loop(total, conc, send)
                cpu = tree_cpu_s(svc["gateway_pid"]) - cpu0
                res.update(
                    target=name, concurrency=conc, cpu_ms_per_req=cpu * 1000 / res["requests"]
                )
                results.append(res)
                print(f"  {name:14} C={conc:<3} {res['rps']:.0f} req/s", flush=True)
                if res["first_error"]:
                    print(f"    first error: {res['first_error']}", flush=True)
    return results


def report(meta: dict[str, Any], results: list[dict[str, Any]]) -> None:
    print(
        f"\n{meta['date']}  nproc={meta['nproc']}  ray {meta['ray']}"
        f"  load avg before {meta['loadavg_1m_before']:.2f}"
        "  (gateway on CPU 0; emulator + load on CPU 1)"
    )
    print(
        f"{'target':14} {'C':>3} {'requests':>8} {'errors':>6} {'req/s':>8} {'p50 ms':>8} "
        f"{'p99 ms':>8} {'gw CPU ms/req':>14}"
    )
    for r in results:
        print(
            f"{r['target']:14} {r['concurrency']:>3} {r['requests']:>8} {r['errors']:>6} "
            f"{r['rps']:>8.1f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
            f"{r['cpu_ms_per_req'] if r['target'] != 'direct' else 0:>14.2f}"
        )
    by = {(r["target"], r["concurrency"]): r for r in results}
    for conc in sorted({r["concurrency"] for r in results}):
        for rest, gql in (("rest-chat", "gql-chat"), ("rest-agent", "gql-agent")):
            a, b = by.get((rest, conc)), by.get((gql, conc))
            if a and b:
                print(
                    f"C={conc}: {gql} vs {rest}: p50 {b['p50_ms'] - a['p50_ms']:+.2f} ms, "
                    f"CPU {b['cpu_ms_per_req'] - a['cpu_ms_per_req']:+.2f} ms/req"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=0, help="measured requests per phase")
    parser.add_argument(
        "--concurrency", default="1,16", type=lambda s: [int(c) for c in s.split(",") if c.strip()]
    )
    args = parser.parse_args(argv)
    args.skip_gateway, args.postgres, args.mode = False, None, "direct"
    pin_to(1)()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    meta = machine()
    results = run_with_services(args, bench)
    if results is None:
        return 1
    report(meta, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
