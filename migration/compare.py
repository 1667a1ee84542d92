"""`cb migrate compare`: one agent operation over the legacy GraphQL path and over REST,
N times each, with latency and results side by side. The GraphQL path is this gateway's
`/graphql` by default, or a legacy server's (`--graphql URL`).

Operations: `get` (GraphQL `agent(id)` beside `GET /api/v1/agents/{id}`) and `execute`
(GraphQL `llmChatCompletion` with the agent's model and system prompt beside
`POST /api/v1/agents/{id}/execute`)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from migration.legacy_source import AGENT


@dataclass
class Path:
    """One way of doing the operation: its timings and what each call answered."""

    name: str
    call: Callable[[], Any]
    times_ms: list[float] = field(default_factory=list)
    answers: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        start = time.perf_counter()
        try:
            self.answers.append(self.call())
        except (httpx.HTTPError, RuntimeError, KeyError) as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.times_ms.append((time.perf_counter() - start) * 1000)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.times_ms)
        return {
            "path": self.name,
            "calls": len(ordered),
            "errors": len(self.errors),
            "p50_ms": round(statistics.median(ordered), 1) if ordered else None,
            "p95_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1)
            if ordered
            else None,
            "mean_ms": round(statistics.fmean(ordered), 1) if ordered else None,
        }


def _checked(reply: httpx.Response) -> Any:
    if reply.status_code >= 400:
        raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:200]}")
    body = reply.json()
    if isinstance(body, dict) and body.get("errors"):
        raise RuntimeError(f"GraphQL: {body['errors'][0].get('message')}")
    return body


def paths(
    http: httpx.Client, graphql_url: str, agent_id: str, operation: str, prompt: str
) -> tuple[Path, Path]:
    """The GraphQL and REST ways of the operation, and a comparable answer from each."""
    if operation == "get":
        query = f"query GetAgent($id: String!) {{ agent(id: $id) {{ {AGENT} }} }}"

        def graphql_get() -> Any:
            variables = {"id": agent_id}
            body = _checked(http.post(graphql_url, json={"query": query, "variables": variables}))
            agent = body["data"]["agent"]
            return {"name": agent["name"], "model": agent["llmProvider"]["model"],
                    "system": agent["prompts"]["system"]}  # fmt: skip

        def rest_get() -> Any:
            agent = _checked(http.get(f"/api/v1/agents/{agent_id}"))
            return {"name": agent["name"], "model": agent["model"],
                    "system": agent.get("system_prompt") or ""}  # fmt: skip

        return Path("graphql agent(id)", graphql_get), Path("REST GET agent", rest_get)
    agent = _checked(http.get(f"/api/v1/agents/{agent_id}"))
    mutation = (
        "mutation Chat($input: LlmChatCompletionInput!) { llmChatCompletion(input: $input) {"
        " id model choices { message { content } } usage { totalTokens } } }"
    )
    messages = [{"role": "system", "content": agent.get("system_prompt") or ""},
                {"role": "user", "content": prompt}]  # fmt: skip

    def graphql_execute() -> Any:
        variables = {"input": {"model": agent["model"], "messages": messages}}
        body = _checked(http.post(graphql_url, json={"query": mutation, "variables": variables}))
        done = body["data"]["llmChatCompletion"]
        return {"ok": True, "content": done["choices"][0]["message"]["content"]}

    def rest_execute() -> Any:
        done = _checked(http.post(f"/api/v1/agents/{agent_id}/execute", json={"prompt": prompt}))
        return {"ok": done["status"] == "completed", "content": done["response"]["content"]}

    return (
        Path("graphql llmChatCompletion", graphql_execute),
        Path("REST execute", rest_execute),
    )


def run_compare(
    gateway: str, headers: dict[str, str], agent_id: str, operation: str, times: int,
    graphql_url: str | None, prompt: str,
) -> int:  # fmt: skip
    """Run both paths `times` times, alternating; print the table. 1 when a path failed or
    (`get`) their answers differ."""
    with httpx.Client(base_url=gateway.rstrip("/"), headers=headers, timeout=120) as http:
        graphql, rest = paths(
            http, graphql_url or f"{gateway.rstrip('/')}/graphql", agent_id, operation, prompt
        )
        for _ in range(times):
            graphql.run()
            rest.run()
    print(f"{'path':28} {'calls':>5} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8}")
    for path in (graphql, rest):
        row = path.summary()
        print(f"{row['path']:28} {row['calls']:>5} {row['errors']:>6} {row['p50_ms']!s:>8}"
              f" {row['p95_ms']!s:>8} {row['mean_ms']!s:>8}")  # fmt: skip
        for error in path.errors[:3]:
            print(f"  {path.name}: {error}")
    same = (
        graphql.answers[:1] == rest.answers[:1]
        if operation == "get"
        else all(a.get("ok") for a in graphql.answers + rest.answers)
    )
    if graphql.answers and rest.answers:
        print(f"first answers: graphql {graphql.answers[0]!r:.120}")
        print(f"               rest    {rest.answers[0]!r:.120}")
    verdict = "same results" if same else "results differ"
    print(verdict if operation == "get" else ("both answered" if same else "a path failed"))
    return 0 if same and not graphql.errors and not rest.errors else 1
