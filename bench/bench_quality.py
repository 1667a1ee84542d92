"""What feedback and judges cost, end to end and in the projections.

End to end (the emulator answering after `--provider-ms`, the gateway as
`bench/bench_execute.py` starts it), closed-loop whole requests at C=1 and C=`--concurrency`:

- `direct`: straight at the emulator, the floor of a provider call;
- `gateway`: `POST …/execute` of an agent without a judge (the baseline);
- `judged`: an agent whose judge scores every execution (`sample_rate` 1): the judge's call
  runs after each answer, in the background, so the answer's latency should not move; its
  extra work shows in the gateway's CPU per request and in how long the judges take to
  catch up after the load;
- `feedback`: `POST …/feedback` on ended executions;
- `replay`: an experiment replaying 100 of the baseline's executions on one model, 4 at a
  time (runs/s from its start to its complete report; p50 and p95 of the runs' durations).

In process (SQLite files): one execution's events folded into both read models (the
baseline), then one feedback event each: CPU per event, and the analytics usage query with
its quality figures.

    python bench/bench_quality.py [--requests N] [--concurrency 16] [--provider-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sys
import tempfile
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

PROMPT = "Summarise the quarter's figures in two sentences."
JUDGE_MARK = "impartial evaluator"  # in every judge's prompt (`domain.judging`)
VERDICT = '{"score": 0.75, "reason": "Mostly right."}'


async def setup(base: str, admin_token: str) -> dict[str, Any]:
    """A tenant with a plain agent and a judged one."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        headers = await new_tenant(http, base, admin_token)
        common = {"model": "gpt-4o-mini", "system_prompt": "You are terse."}
        judge = {"model": "gpt-4o-mini", "rubric": "relevance", "sample_rate": 1.0}
        urls, agents = {}, {}
        for name, extra in (("gateway", {}), ("judged", {"judge": judge})):
            agent = await post_json(
                http, f"{base}/api/v1/agents", {"name": name, **common, **extra}, headers
            )
            urls[name] = f"{base}/api/v1/agents/{agent['id']}/execute"
            agents[name] = agent["id"]
    return {"urls": urls, "headers": headers, "agents": agents}


async def judged_count(http: aiohttp.ClientSession, base: str, headers: dict[str, str]) -> int:
    """Judge executions recorded so far (one per verdict: the emulator answers JSON)."""
    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60), "group_by": "kind"}
    async with http.get(f"{base}/api/v1/analytics/usage", params=params, headers=headers) as r:
        rows = (await r.json())["rows"]
    return sum(row["executions"] for row in rows if row["kind"] == "judge")


async def feedback_load(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], ids: list[str],
    total: int, concurrency: int,
) -> dict[str, Any]:  # fmt: skip
    """Closed loop of `POST …/feedback` over ended executions, in turn."""
    turns = itertools.cycle(ids)
    payload = json.dumps({"score": 0.5, "label": "bench", "comment": "fine"}).encode()
    hdrs = {"Content-Type": "application/json", **headers}

    def target() -> tuple[str, dict[str, str]]:
        return f"{base}/api/v1/executions/{next(turns)}/feedback", hdrs

    return await timed_posts(http, target, payload, 201, total, concurrency)


async def bench(args: argparse.Namespace, svc: dict[str, Any]) -> dict[str, Any]:
    emu_proc, gw_proc = svc["procs"]
    await wait_http(f"{svc['emulator']}/models", emu_proc, 30)
    await wait_http(f"{svc['gateway']}/health", gw_proc, 120)
    made = await setup(svc["gateway"], svc["admin_token"])
    urls, headers, base = made["urls"], made["headers"], svc["gateway"]
    rows: list[dict[str, Any]] = []
    ids: list[str] = []

    def remember(data: bytes) -> bool:
        ids.append(json.loads(data)["execution_id"])
        return True

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for concurrency in (1, args.concurrency):
            total = args.requests or (200 if concurrency == 1 else 1000)
            phases = {
                "direct": lambda c=concurrency, n=total: run_load(
                    http, f"{svc['emulator']}/chat/completions", DIRECT_BODY,
                    {"Authorization": "Bearer bench"}, n, c, lambda _: True),
                "gateway": lambda c=concurrency, n=total: run_load(
                    http, urls["gateway"], {"prompt": PROMPT}, headers, n, c, remember),
                "judged": lambda c=concurrency, n=total: run_load(
                    http, urls["judged"], {"prompt": PROMPT}, headers, n, c, lambda _: True),
                "feedback": lambda c=concurrency, n=total: feedback_load(
                    http, base, headers, ids[:500], n, c),
            }  # fmt: skip
            for name, run in phases.items():
                judges_before = await judged_count(http, base, headers)
                cpu = tree_cpu_s(svc["gateway_pid"])
                result = await run()
                catch_up_s = 0.0
                if name == "judged":  # until every answer's judge has recorded its verdict
                    started = time.perf_counter()
                    while await judged_count(http, base, headers) - judges_before < total:
                        if time.perf_counter() - started > 300:
                            break
                        await asyncio.sleep(0.25)
                    catch_up_s = time.perf_counter() - started
                spent = tree_cpu_s(svc["gateway_pid"]) - cpu
                done = result["requests"] - result["errors"]
                rows.append({"phase": name, "concurrency": concurrency, **result,
                             "cpu_ms_per_request": spent * 1000 / done if done else 0.0,
                             "judges_catch_up_s": catch_up_s})  # fmt: skip
        rows.append(await replay(http, base, headers, made["agents"]["gateway"], svc))
    return {"rows": rows}


async def replay(
    http: aiohttp.ClientSession, base: str, headers: dict[str, str], agent_id: str,
    svc: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    """An experiment replaying the baseline agent's newest 100 executions on one variant,
    4 runs at a time: how long until its report is complete, and the CPU per run."""
    body = {"name": "bench", "source": {"agent_id": agent_id, "limit": 100},
            "variants": [{"name": "v", "model": "gpt-4o-mini"}], "concurrency": 4,
            "budget_usd": 100}  # fmt: skip
    cpu = tree_cpu_s(svc["gateway_pid"])
    started = time.perf_counter()
    made = await post_json(http, f"{base}/api/v1/experiments", body, headers)
    while True:
        async with http.get(f"{base}/api/v1/experiments/{made['id']}", headers=headers) as r:
            found = await r.json()
        if found["status"] != "running":
            break
        await asyncio.sleep(0.1)
    wall = time.perf_counter() - started
    runs = found["progress"]["runs"]
    [variant] = found["variants"]
    return {"phase": "replay", "concurrency": 4, "requests": runs, "errors": runs
            - variant["succeeded"], "rps": runs / wall, "p50_ms": variant["latency_ms"]["p50"],
            "p99_ms": variant["latency_ms"]["p95"],
            "cpu_ms_per_request": (tree_cpu_s(svc["gateway_pid"]) - cpu) * 1000 / max(runs, 1),
            "judges_catch_up_s": 0.0}  # fmt: skip


def _folding(executions: int) -> dict[str, float]:
    """CPU per execution folded (its 3 events), per feedback event folded, and the usage
    query, both read models on SQLite files."""
    from actors.event_store import EventStore
    from actors.settings import Settings
    from domain.execution import Execution
    from domain.results import Outcome
    from projections import analytics, decoded, runner
    from projections.db import ReadModelDB

    usage = {"prompt_tokens": 120, "completion_tokens": 80, "total_tokens": 200}
    answer = {"content": "Fine. " * 40, "finish_reason": "stop"}
    outcome = {"answer": answer, "usage": usage, "cost_usd": 0.0002,
               "model_resolved": "gpt-4o-mini", "provider": "openai"}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="cb-quality-") as tmp:
        settings = Settings(data_dir=tmp)
        app = EventStore(env=settings.store_env())
        history_db = ReadModelDB(settings.read_model_url())
        metrics_db = ReadModelDB("sqlite:///" + str(Path(tmp) / "m.sqlite"), schema="analytics")
        runner.create_tables(history_db)
        runner.create_tables(metrics_db, runner.METRICS)
        tenant = str(uuid.uuid4())
        built = []
        for i in range(executions):
            execution = Execution(
                id=uuid.uuid4(), tenant_id=tenant, agent_id=f"agent-{i % 4}", agent_version=1,
                request={"prompt": PROMPT}, model_requested="cb:smart-chat", stream=False,
            )  # fmt: skip
            execution.resolve_model("gpt-4o-mini", "openai", {})
            execution.complete(Outcome.model_validate(outcome))
            built.append(execution)

        def fold() -> float:
            decoded.forget()
            cpu = time.process_time()
            runner.catch_up_fully(app, history_db, runner.READ_MODELS)
            runner.catch_up_fully(app, metrics_db, runner.METRICS)
            return (time.process_time() - cpu) * 1000 / executions

        for execution in built:
            app.save(execution)
        base = fold()
        for execution in built:
            execution.give_feedback(str(uuid.uuid4()), 0.5, "l", "a comment", "user", "key:k")
            app.save(execution)
        per_feedback = fold()
        now = time.time()
        cpu = time.process_time()
        for _ in range(50):
            rows = analytics.usage(metrics_db, tenant, now - 86400, now + 60, ["agent"], {})
        query_ms = (time.process_time() - cpu) * 1000 / 50
        assert rows and rows[0]["quality"]["scored"] == executions // 4
        app.close()
        history_db.close()
        metrics_db.close()
    return {"execution_fold_ms": base, "feedback_fold_ms": per_feedback, "usage_query_ms": query_ms}


def report(meta: dict[str, Any], result: dict[str, Any]) -> None:
    print(json.dumps(meta))
    print(f"{'phase':10}{'C':>4}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>12}"
          f"{'errors':>8}{'judges done':>13}")  # fmt: skip
    for r in result["rows"]:
        done = f"{r['judges_catch_up_s']:.1f} s" if r["phase"] == "judged" else ""
        cpu = r["cpu_ms_per_request"]
        print(f"{r['phase']:10}{r['concurrency']:>4}{r['rps']:9.1f}{r['p50_ms']:9.2f}"
              f"{r['p99_ms']:9.2f}{cpu:12.2f}{r['errors']:>8}{done:>13}")  # fmt: skip
    f = result["folding"]
    print(f"in process, CPU ms: an execution folded {f['execution_fold_ms']:.3f}, "
          f"a feedback event folded {f['feedback_fold_ms']:.3f}, "
          f"usage by agent with quality {f['usage_query_ms']:.3f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--provider-ms", type=float, default=50.0)
    parser.add_argument("--executions", type=int, default=2000, help="in-process folds")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    folding = _folding(args.executions)
    delay = args.provider_ms / 1000
    script = [
        {"match": "", "content": "Noted.", "delay": delay},
        {"match": JUDGE_MARK, "content": VERDICT, "delay": delay},
    ]
    return run_beside_emulator(args, bench, report, script, {"folding": folding})


if __name__ == "__main__":
    sys.exit(main())
