"""Collaborations through the gateway: a saved definition run sequentially, in parallel and
as a synthesis (the provider sees each step's prompt with what its template took from
earlier steps), its stream and an exact resume of it, history, listing, analytics and the
audit trail; failure policies, a timeout, cancel, validation, another tenant, and a run
that finishes after its tenant's actor was killed without running a finished step again."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import ray

from actors import names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import iter_events

MODEL = "gpt-4o-mini"


def _tag() -> str:
    return uuid.uuid4().hex[:10]


def _model_step(step_id: str, text: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": step_id,
        "model": MODEL,
        "system_prompt": f"You are step {step_id}.",
        "input": text,
        "depends_on": list(deps),
        **extra,
    }


def _save(gateway: ApiClient, tenant: Tenant, definition: dict[str, Any]) -> dict[str, Any]:
    reply = gateway.http.post("/api/v1/collaborations", json=definition, headers=tenant.headers())
    assert reply.status_code == 201, reply.text
    return reply.json()


def _run(gateway: ApiClient, tenant: Tenant, collaboration_id: str, **inputs: Any) -> Any:
    return gateway.http.post(
        f"/api/v1/collaborations/{collaboration_id}/run",
        json={"inputs": inputs},
        headers=tenant.headers(),
    )


def _until(gateway: ApiClient, tenant: Tenant, run_id: str, done: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        found = gateway.http.get(f"/api/v1/collaboration-runs/{run_id}", headers=tenant.headers())
        assert found.status_code == 200, found.text
        if done(found.json()):
            return found.json()
        assert time.monotonic() < deadline, found.json()
        time.sleep(0.1)


def _steps(run: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["id"]: s for s in run["steps"]}


def test_a_run_passes_outputs_along_in_sequence_in_parallel_and_into_a_synthesis(
    gateway: ApiClient,
) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    agent = gateway.new_agent(tenant, model=MODEL, system_prompt=f"Synthesise ({tag}).")
    emu.script(f"gather {tag}", content=f'{{"facts": ["tide {tag}", "moon"], "count": 2}}')
    emu.script(f"risk {tag}", content=f"risk is low {tag}")
    emu.script(f"upside {tag}", content=f"upside is high {tag}")
    emu.script(f"decide {tag}", content=f"final answer {tag}")
    definition = {
        "name": "analyse",
        "inputs": {"topic": {"type": "string"}},
        "steps": [
            _model_step("gather", "gather " + tag + " about {{inputs.topic}}"),
            _model_step("risk", "risk " + tag + " of {{steps.gather.output.facts.0}}", "gather"),
            _model_step(
                "upside", "upside " + tag + " given {{steps.gather.output.count}}", "gather"
            ),
            {
                "id": "decide",
                "agent_id": agent["id"],
                "depends_on": ["risk", "upside"],
                "input": "decide " + tag + ": {{steps.risk.output}} / {{steps.upside.output}}",
            },
        ],
    }
    saved = _save(gateway, tenant, definition)
    assert saved["version"] == 1 and saved["output"] == "decide"

    reply = _run(gateway, tenant, saved["id"], topic="tides")
    assert reply.status_code == 200, reply.text
    run = reply.json()
    assert run["status"] == "completed" and run["output"] == f"final answer {tag}"
    steps = _steps(run)
    assert all(s["status"] == "completed" and s["attempts"] == 1 for s in steps.values())

    # each step's prompt holds what its template took from the inputs and earlier steps
    [gather] = emu.requests_matching(f"gather {tag}")
    assert gather.body["messages"][-1]["content"] == f"gather {tag} about tides"
    assert gather.body["messages"][0] == {"role": "system", "content": "You are step gather."}
    [risk] = emu.requests_matching(f"risk {tag} of tide {tag}")
    [upside] = emu.requests_matching(f"upside {tag} given 2")
    [decide] = emu.requests_matching(f"decide {tag}")
    assert decide.body["messages"][0]["content"] == f"Synthesise ({tag})."
    assert decide.body["messages"][-1]["content"] == (
        f"decide {tag}: risk is low {tag} / upside is high {tag}"
    )
    assert risk and upside

    # each step is a real execution, linked both ways
    total = 0
    for step_id, step in steps.items():
        record = gateway.ended_execution(tenant, step["execution_id"])
        assert record["kind"] == "collaboration_step" and record["status"] == "completed"
        request_metadata = record["metadata"]["request_metadata"]
        assert request_metadata["collaboration_run_id"] == run["run_id"]
        assert request_metadata["step_id"] == step_id
        assert step["usage"]["total_tokens"] == record["usage"]["total_tokens"] > 0
        total += record["usage"]["total_tokens"]
    assert run["usage"]["total_tokens"] == total
    assert (
        gateway.ended_execution(tenant, steps["decide"]["execution_id"])["agent_id"] == agent["id"]
    )

    # the stream, replayed from the store, and resumed after any event: exactly the tail
    path = f"/api/v1/collaboration-runs/{run['run_id']}/stream"
    with gateway.http.stream("GET", path, headers=tenant.headers()) as response:
        events = [e for e in iter_events(response) if e["event"] != "heartbeat"]
    names_ = [e["event"] for e in events]
    assert names_[0] == "run_start" and names_[-1] == "run_complete"
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[-1]["data"]["output"] == f"final answer {tag}"
    assert [e["data"]["step_id"] for e in events if e["event"] == "step_complete"][-1] == "decide"
    chunks = [e for e in events if e["event"] == "content_chunk"]
    by_step: dict[str, str] = {}
    for chunk in chunks:
        by_step[chunk["data"]["step_id"]] = (
            by_step.get(chunk["data"]["step_id"], "") + chunk["data"]["delta"]
        )
    assert by_step == {i: s["output"] for i, s in steps.items()}
    middle = events[len(events) // 2]["id"]
    resumed_headers = {**tenant.headers(), "Last-Event-ID": str(middle)}
    with gateway.http.stream("GET", path, headers=resumed_headers) as response:
        tail = [e for e in iter_events(response) if e["event"] != "heartbeat"]
    assert tail == [e for e in events if e["id"] > middle]

    # listed with its status, in analytics, and in the audit trail
    listed = gateway.http.get(
        "/api/v1/collaboration-runs", params={"status": "completed"}, headers=tenant.headers()
    ).json()["runs"]
    assert [r["run_id"] for r in listed] == [run["run_id"]]
    assert listed[0]["cost_usd"] == pytest.approx(run["usage"]["cost_usd"])
    none_failed = gateway.http.get(
        "/api/v1/collaboration-runs", params={"status": "failed"}, headers=tenant.headers()
    ).json()["runs"]
    assert none_failed == []
    figures = gateway.http.get("/api/v1/analytics/collaborations", headers=tenant.headers()).json()[
        "collaborations"
    ]
    [mine] = figures
    assert (mine["collaboration_id"], mine["runs"], mine["completed"]) == (saved["id"], 1, 1)
    assert mine["completion_rate"] == 1.0 and mine["duration_ms"]["p50"] > 0
    assert mine["cost_per_run_usd"] == pytest.approx(run["usage"]["cost_usd"])
    assert sorted(s["step_id"] for s in mine["steps"]) == sorted(steps)
    audit = gateway.http.get(
        "/api/v1/audit", params={"limit": 100}, headers=tenant.headers()
    ).json()["entries"]
    kinds = [e["kind"] for e in audit if e["target"] == run["run_id"]]
    assert (
        "collaboration_run.started" in kinds
        and kinds.count("collaboration_run.step_completed") == 4
    )
    started = next(e for e in audit if e["kind"] == "collaboration_run.started")
    assert started["actor"] and started["detail"]["inputs"] == {"topic": "tides"}
    outputs = {
        e["detail"]["step_id"]: e["detail"]["output"]
        for e in audit
        if e["kind"] == "collaboration_run.step_completed"
    }
    assert outputs["decide"] == f"final answer {tag}"
    assert any(
        e["detail"].get("input") == f"gather {tag} about tides"
        for e in audit
        if e["kind"] == "collaboration_run.step_started"
    )


@SQLITE_ONLY
def test_the_live_stream_tags_each_step_and_an_inline_definition_runs_unsaved(
    gateway: ApiClient,
) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    emu.script(f"one {tag}", chunks=["alpha ", "beta"], chunk_delay=0.05)
    emu.script(f"two {tag}", chunks=["gamma ", "delta"], chunk_delay=0.05)
    definition = {
        "name": "inline",
        "steps": [
            _model_step("one", f"one {tag}"),
            _model_step("two", "two " + tag + " after {{steps.one.output}}", "one"),
        ],
    }
    with gateway.http.stream(
        "POST",
        "/api/v1/collaborations/run/stream",
        json={"definition": definition},
        headers=tenant.headers(),
    ) as response:
        assert response.status_code == 200
        events = [e for e in iter_events(response) if e["event"] != "heartbeat"]
    run_id = events[0]["data"]["run_id"]
    assert response.headers["x-cb-run-id"] == run_id
    shape = [
        (e["event"], e["data"].get("step_id"))
        for e in events
        if e["event"] not in ("usage_update",)
    ]
    assert shape[0] == ("run_start", None) and shape[-1] == ("run_complete", None)
    one_done = shape.index(("step_complete", "one"))
    assert ("content_chunk", "one") in shape[:one_done]
    assert ("content_chunk", "two") in shape[one_done:]
    assert emu.requests_matching(f"two {tag} after alpha beta")
    stored = gateway.http.get(f"/api/v1/collaboration-runs/{run_id}", headers=tenant.headers())
    assert stored.json()["collaboration_id"] is None and stored.json()["output"] == "gamma delta"
    path = f"/api/v1/collaboration-runs/{run_id}/stream"
    with gateway.http.stream("GET", path, headers=tenant.headers()) as response:
        replayed = [e for e in iter_events(response) if e["event"] != "heartbeat"]
    assert replayed == events  # the store gives back the stream as it was sent


@SQLITE_ONLY
def test_failure_policies_decide_what_happens_to_dependents(gateway: ApiClient) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    emu.script(f"bad {tag}", status=400, error_body={"error": {"message": "no", "type": "x"}})
    emu.script(f"ok {tag}", content=f"fine {tag}")

    def definition(policy: str, output: str = "after") -> dict[str, Any]:
        return {
            "name": policy,
            "output": output,
            "steps": [
                _model_step("bad", f"bad {tag} {policy}", on_failure=policy, retries=0),
                _model_step("side", f"ok {tag} side {policy}"),
                _model_step("after", "ok " + tag + " got {{steps.bad.output}}", "bad"),
            ],
        }

    skipping = _run(gateway, tenant, _save(gateway, tenant, definition("skip_dependents"))["id"])
    steps = _steps(skipping.json())
    assert skipping.json()["status"] == "failed"  # its output step was skipped
    assert steps["bad"]["status"] == "failed" and steps["after"]["status"] == "skipped"
    assert steps["side"]["status"] == "completed"
    assert steps["after"]["execution_id"] is None

    skipping_side = _run(
        gateway, tenant, _save(gateway, tenant, definition("skip_dependents", "side"))["id"]
    )
    assert skipping_side.json()["status"] == "completed"
    assert skipping_side.json()["output"] == f"fine {tag}"

    going_on = _run(gateway, tenant, _save(gateway, tenant, definition("continue"))["id"])
    assert going_on.json()["status"] == "completed"
    [after] = emu.requests_matching(f"ok {tag} got")
    error_type = _steps(going_on.json())["bad"]["error"]["type"]
    assert '{"error": {"type": "' + error_type in after.body["messages"][-1]["content"]

    failing = _run(gateway, tenant, _save(gateway, tenant, definition("fail"))["id"])
    body = failing.json()
    assert body["status"] == "failed" and body["error"]["type"] == "step_failed"
    assert body["error"]["step_id"] == "bad"
    assert _steps(body)["after"]["status"] == "pending"  # never started


@SQLITE_ONLY
def test_a_step_past_its_timeout_is_retried_then_fails(gateway: ApiClient) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    emu.script(f"slow {tag}", content="late", delay=3.0)
    definition = {
        "name": "slow",
        "steps": [_model_step("slow", f"slow {tag}", timeout_s=0.5, retries=1)],
    }
    run = _run(gateway, tenant, _save(gateway, tenant, definition)["id"]).json()
    step = _steps(run)["slow"]
    assert run["status"] == "failed" and step["status"] == "failed"
    assert step["attempts"] == 2 and step["error"]["type"] == "step_timeout"
    for execution_id in step["execution_ids"]:
        assert gateway.ended_execution(tenant, execution_id)["status"] == "cancelled"


@SQLITE_ONLY
def test_cancel_stops_the_running_steps(gateway: ApiClient) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    emu.script(f"held {tag}", content="late", delay=20.0)
    definition = {"name": "held", "steps": [_model_step("held", f"held {tag}")]}
    saved = _save(gateway, tenant, definition)
    path = f"/api/v1/collaborations/{saved['id']}/run/stream"
    with gateway.http.stream("POST", path, json={}, headers=tenant.headers()) as response:
        events = iter_events(response)
        opened = next(events)
        assert opened["event"] == "run_start"
        run_id = opened["data"]["run_id"]
        deadline = time.monotonic() + 10
        while not emu.requests_matching(f"held {tag}"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        cancelled = gateway.http.post(
            f"/api/v1/collaboration-runs/{run_id}/cancel", headers=tenant.headers()
        )
        assert cancelled.status_code == 200, cancelled.text
        rest = [e for e in events if e["event"] != "heartbeat"]
    assert rest[-1]["event"] == "error" and rest[-1]["data"]["status"] == "cancelled"
    body = cancelled.json()
    assert body["status"] == "cancelled"
    step = _steps(body)["held"]
    assert step["status"] == "failed" and step["error"]["type"] == "cancelled"
    assert gateway.ended_execution(tenant, step["execution_id"])["status"] == "cancelled"
    again = gateway.http.post(
        f"/api/v1/collaboration-runs/{run_id}/cancel", headers=tenant.headers()
    )
    assert again.status_code == 409 and again.json()["error"]["type"] == "conflict"


@SQLITE_ONLY
def test_bad_definitions_and_inputs_are_400s_before_anything_runs(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    good = {
        "name": "g",
        "inputs": {"n": {"type": "integer"}},
        "steps": [_model_step("a", "count {{inputs.n}}")],
    }
    for bad, says in (
        ({**good, "steps": [_model_step("a", "x", "b"), _model_step("b", "y", "a")]}, "cycle"),
        (
            {**good, "steps": [{"id": "a", "agent_id": str(uuid.uuid4()), "input": "x"}]},
            "not found",
        ),
        ({**good, "steps": [_model_step("a", "{{steps.z.output}}")]}, "unknown step"),
        ({**good, "steps": [_model_step("a", "{{inputs.m}}")]}, "undeclared input"),
        ({**good, "steps": [{**_model_step("a", "x"), "model": "no-such-model"}]}, ""),
    ):
        reply = gateway.http.post("/api/v1/collaborations", json=bad, headers=tenant.headers())
        assert reply.status_code in (400, 404), reply.text
        assert says in reply.json()["error"]["message"], reply.text
        assert reply.json()["error"]["type"] in ("invalid_request", "model_not_found")
    saved = _save(gateway, tenant, good)
    for inputs in ({}, {"n": "three"}, {"n": 3, "extra": 1}):
        reply = _run(gateway, tenant, saved["id"], **inputs)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["type"] == "invalid_request"
    runs = gateway.http.get("/api/v1/collaboration-runs", headers=tenant.headers())
    assert runs.json()["runs"] == []  # nothing ran
    patched = gateway.http.patch(
        f"/api/v1/collaborations/{saved['id']}",
        json={"description": "v2"},
        headers=tenant.headers(),
    )
    assert patched.status_code == 200 and patched.json()["version"] == 2
    refused = gateway.http.patch(
        f"/api/v1/collaborations/{saved['id']}", json={"output": "zz"}, headers=tenant.headers()
    )
    assert refused.status_code == 400
    assert (
        gateway.http.get(f"/api/v1/collaborations/{saved['id']}", headers=tenant.headers()).json()[
            "version"
        ]
        == 2
    )
    gone = gateway.http.delete(f"/api/v1/collaborations/{saved['id']}", headers=tenant.headers())
    assert gone.status_code == 200
    assert _run(gateway, tenant, saved["id"], n=1).status_code == 404
    assert gateway.http.get("/api/v1/collaborations", headers=tenant.headers()).json() == {
        "collaborations": []
    }


@SQLITE_ONLY
def test_another_tenant_cannot_read_run_or_stream_a_collaboration(gateway: ApiClient) -> None:
    emu, owner, other, tag = (
        gateway.cluster.emulator,
        gateway.new_tenant(),
        gateway.new_tenant(),
        _tag(),
    )
    emu.script(tag, content="mine")
    saved = _save(gateway, owner, {"name": "mine", "steps": [_model_step("a", f"x {tag}")]})
    run = _run(gateway, owner, saved["id"]).json()
    for method, path in (
        ("GET", f"/api/v1/collaborations/{saved['id']}"),
        ("PATCH", f"/api/v1/collaborations/{saved['id']}"),
        ("DELETE", f"/api/v1/collaborations/{saved['id']}"),
        ("POST", f"/api/v1/collaborations/{saved['id']}/run"),
        ("POST", f"/api/v1/collaborations/{saved['id']}/run/stream"),
        ("GET", f"/api/v1/collaboration-runs/{run['run_id']}"),
        ("GET", f"/api/v1/collaboration-runs/{run['run_id']}/stream"),
        ("POST", f"/api/v1/collaboration-runs/{run['run_id']}/cancel"),
    ):
        body = {} if method in ("POST", "PATCH") else None
        reply = gateway.http.request(method, path, json=body, headers=other.headers())
        assert reply.status_code == 404, (method, path, reply.text)
    assert gateway.http.get("/api/v1/collaboration-runs", headers=other.headers()).json() == {
        "runs": []
    }
    assert len(emu.requests_matching(tag)) == 1


@SQLITE_ONLY
def test_a_run_finishes_after_its_tenant_actor_died_without_rerunning_finished_steps(
    gateway: ApiClient,
) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), _tag()
    emu.script(f"first {tag}", content=f"one {tag}")
    emu.script(f"second {tag}", content=f"two {tag}")
    emu.script(f"second {tag}", content=f"two {tag}", delay=2.0, times=1)  # killed mid-call
    emu.script(f"third {tag}", content=f"three {tag}")
    definition = {
        "name": "durable",
        "steps": [
            _model_step("first", f"first {tag}"),
            _model_step("second", "second " + tag + " {{steps.first.output}}", "first"),
            _model_step("third", "third " + tag + " {{steps.second.output}}", "second"),
        ],
    }
    saved = _save(gateway, tenant, definition)
    replies: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: replies.update(run=_run(gateway, tenant, saved["id"])))
    worker.start()
    deadline = time.monotonic() + 20
    while not emu.requests_matching(f"second {tag}"):
        assert time.monotonic() < deadline, "the second step never started"
        time.sleep(0.02)
    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    worker.join(timeout=60)

    listed = gateway.http.get("/api/v1/collaboration-runs", headers=tenant.headers())
    [row] = listed.json()["runs"]
    run = _until(gateway, tenant, row["run_id"], lambda r: r["status"] != "running")
    assert run["status"] == "completed" and run["output"] == f"three {tag}"
    steps = _steps(run)
    assert len(emu.requests_matching(f"first {tag}")) == 1  # not run again
    assert steps["first"]["attempts"] == 1
    assert steps["second"]["attempts"] == 2  # the interrupted attempt, then its retry
    assert [
        e["status"]
        for e in (gateway.ended_execution(tenant, i) for i in steps["second"]["execution_ids"])
    ] == ["failed", "completed"]
    assert emu.requests_matching(f"third {tag} two {tag}")
    # the whole-request caller got the run's end too (its call was retried on the new actor)
    assert replies["run"].status_code == 200, replies["run"].text
    assert replies["run"].json()["run_id"] == run["run_id"]
    assert replies["run"].json()["status"] == "completed"
    path = f"/api/v1/collaboration-runs/{run['run_id']}/stream"
    with gateway.http.stream("GET", path, headers=tenant.headers()) as response:
        events = [e["event"] for e in iter_events(response) if e["event"] != "heartbeat"]
    assert "run_resumed" in events and events[-1] == "run_complete"
