"""Replay experiments through the gateway: recorded executions run again on two variants
(the provider sees the originals' messages with the variant's model; tools answer from the
record, not by a new call), the report's figures equal those of the runs, progress over
SSE, a judge's mean scores, cancel, validation, another tenant, and a resume after the
tenant's actor died mid-experiment."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from actors import names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.mcp_http import RecordingMcpServer
from tests.support.sse import iter_events


@pytest.fixture(scope="module")
def mcp_server() -> Iterator[RecordingMcpServer]:
    with RecordingMcpServer() as server:
        yield server


def _start(gateway: ApiClient, tenant: Tenant, **body: Any) -> Any:
    return gateway.http.post("/api/v1/experiments", json=body, headers=tenant.headers())


def _report(gateway: ApiClient, tenant: Tenant, experiment_id: str) -> dict[str, Any]:
    reply = gateway.http.get(f"/api/v1/experiments/{experiment_id}", headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()


def _until(gateway: ApiClient, tenant: Tenant, experiment_id: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        found = _report(gateway, tenant, experiment_id)
        if done(found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.2)


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_an_experiment_replays_recorded_executions_on_two_variants(
    gateway: ApiClient, mcp_server: RecordingMcpServer
) -> None:
    emu, tenant = gateway.cluster.emulator, gateway.new_tenant()
    registered = gateway.http.post(
        "/api/v1/mcp/servers", json={"name": "rec", "transport": "http", "url": mcp_server.url},
        headers=tenant.headers(),
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    tag = uuid.uuid4().hex[:10]
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["add"],
                              system_prompt=f"Be exact ({tag}).")  # fmt: skip
    add = {"name": "add", "arguments": {"a": 2, "b": 40}}
    emu.script(f"sum {tag}", content="The sum is", with_tool_results=True)
    emu.script(f"sum {tag}", tool_calls=[add], times=1)
    for model in ("speedy-a", "speedy-b"):  # each replay's first turn calls the tool again
        emu.script(f"sum {tag}", tool_calls=[add], times=1, model=model)
    prompts = [f"sum {tag}", f"first {tag}", f"second {tag}"]
    originals = {}
    for prompt in prompts:
        done = gateway.execute(tenant, agent["id"], prompt)
        assert done.status_code == 200, done.text
        originals[prompt] = done.json()
    tool_calls = len(mcp_server.posts_of("tools/call"))
    assert tool_calls >= 1

    started = _start(gateway, tenant, name="cheaper?", source={"agent_id": agent["id"]},
                     variants=[{"name": "a", "model": "speedy-a"},
                               {"name": "b", "model": "speedy-b",
                                "parameters": {"temperature": 0.1}}],
                     budget_usd=5)  # fmt: skip
    assert started.status_code == 201, started.text
    experiment_id = started.json()["id"]
    report = _until(gateway, tenant, experiment_id, lambda r: r["status"] != "running")
    assert report["status"] == "completed" and report["progress"] == {"runs": 6, "of": 6}

    # the tool was not called again: its recorded result went back to the model
    assert len(mcp_server.posts_of("tools/call")) == tool_calls
    for variant in ("speedy-a", "speedy-b"):
        for prompt in prompts:
            original = next(r for r in emu.requests_matching(prompt)
                            if r.body["model"] == "gpt-4o-mini")  # fmt: skip
            [replayed, *turns] = [r for r in emu.requests_matching(prompt)
                                  if r.body["model"] == variant]  # fmt: skip
            assert replayed.body["messages"] == original.body["messages"]
            if prompt.startswith("sum"):
                [answer] = turns
                assert answer.body["messages"][-1]["role"] == "tool"
                assert "42" in answer.body["messages"][-1]["content"]
    assert all(r.body.get("temperature") == 0.1 for r in emu.requests_matching(tag)
               if r.body["model"] == "speedy-b")  # fmt: skip

    # the report's figures are those of the runs' executions
    runs = {}
    for source in report["sources"]:
        for name, run in source["variants"].items():
            record = gateway.ended_execution(tenant, run["execution_id"])
            assert record["kind"] == "experiment_run"
            assert record["metadata"]["request_metadata"]["variant"] == name
            assert run["output"] == record["response"]["content"]
            runs.setdefault(name, []).append(record)
    assert sorted(s["execution_id"] for s in report["sources"]) == sorted(
        o["execution_id"] for o in originals.values()
    )
    assert all(s["original"]["output"] for s in report["sources"])
    for figures in report["variants"]:
        mine = runs[figures["name"]]
        assert (figures["runs"], figures["succeeded"], figures["success_rate"]) == (3, 3, 1.0)
        assert figures["total_tokens"] == sum(r["usage"]["total_tokens"] for r in mine)
        assert figures["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in mine)
        assert figures["cost_usd"] == pytest.approx(sum(r["usage"]["cost_usd"] for r in mine))
        durations = [r["duration_ms"] for r in mine]
        assert figures["latency_ms"]["p50"] == pytest.approx(_nearest_rank(durations, 0.5))
        assert figures["latency_ms"]["p95"] == pytest.approx(_nearest_rank(durations, 0.95))
        assert figures["mean_score"] is None
    assert report["spent_usd"] == pytest.approx(sum(f["cost_usd"] for f in report["variants"]))
    listed = gateway.http.get("/api/v1/executions", params={"kind": "experiment_run"},
                              headers=tenant.headers()).json()["executions"]  # fmt: skip
    assert len(listed) == 6

    with gateway.http.stream("GET", f"/api/v1/experiments/{experiment_id}/stream",
                             headers=tenant.headers()) as response:  # fmt: skip
        events = [e["event"] for e in iter_events(response)]
    assert events == ["experiment_start", *["run_complete"] * 6, "experiment_complete"]
    mine = gateway.http.get("/api/v1/experiments", headers=tenant.headers()).json()
    assert [e["id"] for e in mine["experiments"]] == [experiment_id]
    deadline = time.monotonic() + 10
    while not (trail := gateway.http.get("/api/v1/audit", params={"kind": "experiment.started"},
                                         headers=tenant.headers()).json()["entries"]):  # fmt: skip
        assert time.monotonic() < deadline, "no audit entry"
        time.sleep(0.2)
    assert trail and trail[0]["detail"]["variants"] == ["a", "b"]
    assert trail[0]["actor"].startswith("key:")


@SQLITE_ONLY
def test_a_judged_experiment_reports_mean_scores(gateway: ApiClient) -> None:
    emu, tenant = gateway.cluster.emulator, gateway.new_tenant()
    tag = uuid.uuid4().hex[:10]
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    for n in range(2):
        assert gateway.execute(tenant, agent["id"], f"q{n} {tag}").status_code == 200
    emu.script(f"Rubric {tag}.", content='{"score": 0.6, "reason": "ok"}')
    judge = {"model": "gpt-4o-mini", "rubric": "relevance", "criteria": f"Rubric {tag}."}
    started = _start(gateway, tenant, name="judged", source={"agent_id": agent["id"]},
                     variants=[{"name": "b", "model": "speedy-b"}], judge=judge)  # fmt: skip
    assert started.status_code == 201, started.text
    report = _until(gateway, tenant, started.json()["id"], lambda r: r["status"] != "running")
    [figures] = report["variants"]
    assert (figures["runs"], figures["scored"], figures["mean_score"]) == (2, 2, 0.6)
    assert figures["judge_cost_usd"] > 0
    for source in report["sources"]:
        run = source["variants"]["b"]
        assert run["score"] == 0.6
        record = gateway.ended_execution(tenant, run["execution_id"])
        assert [f["source"] for f in record["feedback"]] == ["judge"]


@SQLITE_ONLY
def test_cancel_validation_and_another_tenant(gateway: ApiClient) -> None:
    emu, tenant, other = gateway.cluster.emulator, gateway.new_tenant(), gateway.new_tenant()
    tag = uuid.uuid4().hex[:10]
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    assert gateway.execute(tenant, agent["id"], f"slow {tag}").status_code == 200
    emu.script(f"slow {tag}", content="late", delay=5.0, model="speedy-a")

    for bad in (
        {"variants": [{"name": "x", "model": "speedy-a", "agent_id": agent["id"]}]},
        {"variants": []},
        {"variants": [{"name": "x", "model": "speedy-a"}, {"name": "x", "model": "speedy-b"}]},
        {"variants": [{"name": "x", "model": "speedy-a"}], "budget_usd": 0},
        {"variants": [{"name": "x", "model": "speedy-a"}], "surprise": 1},
        {"variants": [{"name": "x", "model": "speedy-a"}],
         "source": {"agent_id": agent["id"], "from": "2020-01-01", "to": "2020-01-02"}},
    ):  # fmt: skip
        body = {"name": "bad", "source": {"agent_id": agent["id"]}, **bad}
        reply = _start(gateway, tenant, **body)
        assert reply.status_code == 400, (bad, reply.text)
        assert reply.json()["error"]["type"] == "invalid_request"
    unknown = _start(gateway, tenant, name="bad", source={"agent_id": agent["id"]},
                     variants=[{"name": "x", "model": "no-such-model"}])  # fmt: skip
    assert 400 <= unknown.status_code < 500

    started = _start(gateway, tenant, name="slow", source={"agent_id": agent["id"]},
                     variants=[{"name": "a", "model": "speedy-a"}])  # fmt: skip
    assert started.status_code == 201, started.text
    experiment_id = started.json()["id"]
    for path in ("", "/stream"):
        assert gateway.http.get(f"/api/v1/experiments/{experiment_id}{path}",
                                headers=other.headers()).status_code == 404  # fmt: skip
    deadline = time.monotonic() + 20
    while not [r for r in emu.requests_matching(f"slow {tag}") if r.body["model"] == "speedy-a"]:
        assert time.monotonic() < deadline, "the replay never reached the provider"
        time.sleep(0.05)
    assert gateway.http.post(f"/api/v1/experiments/{experiment_id}/cancel",
                             headers=other.headers()).status_code == 404  # fmt: skip
    cancelled = gateway.http.post(f"/api/v1/experiments/{experiment_id}/cancel",
                                  headers=tenant.headers())  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled" and cancelled.json()["progress"]["runs"] == 0
    again = gateway.http.post(f"/api/v1/experiments/{experiment_id}/cancel",
                              headers=tenant.headers())  # fmt: skip
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"
    runs = gateway.http.get("/api/v1/executions", params={"kind": "experiment_run"},
                            headers=tenant.headers()).json()["executions"]  # fmt: skip
    assert [r["status"] for r in runs] == ["cancelled"]  # the run in flight, recorded so


@SQLITE_ONLY
def test_an_experiment_resumes_after_its_tenant_actor_died(gateway: ApiClient) -> None:
    emu, tenant = gateway.cluster.emulator, gateway.new_tenant()
    tag = uuid.uuid4().hex[:10]
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    prompts = [f"p{n} {tag}" for n in range(3)]
    prompt_of = {}
    for prompt in prompts:
        done = gateway.execute(tenant, agent["id"], prompt)
        assert done.status_code == 200, done.text
        prompt_of[done.json()["execution_id"]] = prompt
    emu.script(tag, content="replayed", delay=1.0, model="speedy-a")
    started = _start(gateway, tenant, name="durable", source={"agent_id": agent["id"]},
                     variants=[{"name": "a", "model": "speedy-a"}], concurrency=1)  # fmt: skip
    assert started.status_code == 201, started.text
    experiment_id = started.json()["id"]
    first = _until(gateway, tenant, experiment_id, lambda r: r["progress"]["runs"] >= 1)
    done_before = {s["execution_id"] for s in first["sources"] if s["variants"]}

    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)

    report = _until(gateway, tenant, experiment_id, lambda r: r["status"] != "running")
    assert report["status"] == "completed" and report["progress"]["runs"] == 3
    by_prompt = {p: [r for r in emu.requests_matching(p) if r.body["model"] == "speedy-a"]
                 for p in prompts}  # fmt: skip
    assert all(by_prompt[p] for p in prompts)  # every source was replayed
    assert done_before and all(len(by_prompt[prompt_of[s]]) == 1 for s in done_before)
