"""Feedback and judges through the gateway, on SQLite and PostgreSQL: scores recorded on
executions (with their scopes), rolled up into analytics' quality figures; a judge scoring
sampled executions after their answers were sent, and a malformed judge reply recorded as
a judge failure."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import read_events, stream

JUDGE_MODEL = "gpt-4o-mini"  # an OpenAI-format model: the emulator answers it


def _feedback(
    gateway: ApiClient, tenant: Tenant, execution_id: str, key: str | None = None, **body: Any
) -> Any:
    return gateway.http.post(
        f"/api/v1/executions/{execution_id}/feedback", json=body, headers=tenant.headers(key)
    )


def _key(gateway: ApiClient, tenant: Tenant, scopes: list[str]) -> str:
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/api-keys", json={"scopes": scopes},
        headers=gateway.admin,
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    return issued.json()["api_key"]


def _quality_by_model(gateway: ApiClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60), "group_by": "model,kind"}
    reply = gateway.http.get("/api/v1/analytics/usage", params=params, headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return {(r["model"], r["kind"]): r for r in reply.json()["rows"]}


def _eventually(read: Any, ready: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = read()
        if ready(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_feedback_round_trip_scopes_and_quality_rollups(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant(), gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="speedy-b")
    executor = _key(gateway, tenant, ["agents:execute", "executions:read"])
    first = gateway.http.post(
        f"/api/v1/agents/{agent['id']}/execute", json={"prompt": "one"},
        headers=tenant.headers(executor),
    ).json()  # fmt: skip
    second = gateway.execute(tenant, agent["id"], "two two two").json()
    a, b = first["execution_id"], second["execution_id"]

    # the credential that started an execution may score it; another without
    # executions:write may not; the tenant's full key may
    own = _feedback(gateway, tenant, a, executor, score=True, label="helpful", comment="Nice")
    assert own.status_code == 201, own.text
    assert own.json()["score"] == 1.0 and own.json()["source"] == "user"
    refused = _feedback(gateway, tenant, b, executor, score=0.5)
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_denied"
    assert _feedback(gateway, tenant, a, score=0.5, source="app").status_code == 201
    assert _feedback(gateway, tenant, b, score=0.25).status_code == 201

    for bad in ({"score": 2}, {"score": "great"}, {"score": 1, "unknown": 1}, {}):
        reply = _feedback(gateway, tenant, a, **bad)
        assert reply.status_code == 400 and reply.json()["error"]["type"] == "invalid_request"
    missing = _feedback(gateway, tenant, str(uuid.uuid4()), score=1)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert _feedback(gateway, other, a, score=0).status_code == 404  # another tenant's

    record = _eventually(
        lambda: gateway.http.get(f"/api/v1/executions/{a}", headers=tenant.headers()).json(),
        lambda r: len(r.get("feedback") or []) == 2,
    )
    assert record["quality"] == {"mean_score": 0.75, "scored": 2}
    assert [(f["score"], f["source"], f["comment"]) for f in record["feedback"]] == [
        (1.0, "user", "Nice"), (0.5, "app", None)]  # fmt: skip

    # by hand: scores 1, 0.5 (on a) and 0.25 (on b): mean 1.75 / 3; both executions scored
    executions = [gateway.ended_execution(tenant, i) for i in (a, b)]
    tokens = sum(e["usage"]["total_tokens"] for e in executions)
    cost = sum(e["usage"]["cost_usd"] for e in executions)
    row = _eventually(
        lambda: _quality_by_model(gateway, tenant)[("speedy-b", "agent_execution")],
        lambda r: r["quality"]["scored"] == 3,
    )
    quality = row["quality"]
    mean = 1.75 / 3
    assert quality["scored"] == 3 and quality["scored_executions"] == 2
    assert quality["mean_score"] == pytest.approx(mean, abs=1e-6)
    assert quality["per_1k_tokens"] == pytest.approx(mean / (tokens / 2 / 1000), rel=1e-4)
    assert quality["per_usd"] == pytest.approx(mean / (cost / 2), rel=1e-4)


@SQLITE_ONLY
def test_an_erased_subject_takes_its_feedback_comment(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    subject = f"ada-{uuid.uuid4().hex}"
    done = gateway.execute(tenant, agent["id"], "hello", subject=subject).json()
    words = f"my private words {uuid.uuid4().hex}"
    assert _feedback(gateway, tenant, done["execution_id"], score=0, comment=words).is_success
    exported = gateway.http.get(f"/api/v1/subjects/{subject}/export", headers=tenant.headers())
    lines = [json.loads(line) for line in exported.text.splitlines()]
    [row] = [line["data"] for line in lines if line["kind"] == "execution"]
    assert row["feedback"][0]["comment"] == words  # in its record and its events
    assert any(
        line["topic"].endswith("Execution.FeedbackGiven") and line["data"]["comment"] == words
        for line in lines if line["kind"] == "event"
    )  # fmt: skip
    assert gateway.http.delete(f"/api/v1/subjects/{subject}", headers=tenant.headers()).is_success
    record = _eventually(
        lambda: gateway.ended_execution(tenant, done["execution_id"]),
        lambda r: r.get("feedback") and r["feedback"][0]["comment"] != words,
    )
    [given] = record["feedback"]
    assert given["comment"] == "[erased]" and given["score"] == 0.0  # the score stays


def _judge_spec(marker: str, **extra: Any) -> dict[str, Any]:
    return {"model": JUDGE_MODEL, "rubric": "correctness", "criteria": f"Rubric {marker}.",
            **extra}  # fmt: skip


def _judge_runs(gateway: ApiClient, tenant: Tenant) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/executions", params={"kind": "judge"},
                             headers=tenant.headers())  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()["executions"]


def test_a_judge_scores_after_the_answer_was_sent(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    marker = uuid.uuid4().hex
    emulator = gateway.cluster.emulator
    # the judge's reply is held 1.5 s: the answer must not wait for it
    emulator.script(f"Rubric {marker}.", content='{"score": 0.9, "reason": "All correct."}',
                    delay=1.5)  # fmt: skip
    agent = gateway.new_agent(tenant, model="speedy-b", judge=_judge_spec(marker))
    assert agent["judge"]["model"] == JUDGE_MODEL and agent["judge"]["sample_rate"] == 1.0
    answered = gateway.execute(tenant, agent["id"], f"What is 2+2? {marker}")
    assert answered.status_code == 200, answered.text
    execution_id = answered.json()["execution_id"]
    assert answered.json()["metadata"]["duration_ms"] < 1500
    record = gateway.ended_execution(tenant, execution_id)
    assert record.get("feedback") == []  # the judge is still waiting on its reply

    record = _eventually(
        lambda: gateway.ended_execution(tenant, execution_id),
        lambda r: bool(r.get("feedback")),
    )
    [verdict] = record["feedback"]
    assert (verdict["score"], verdict["source"], verdict["label"]) == (0.9, "judge", "correctness")
    assert verdict["comment"] == "All correct."
    [run_id] = verdict["judge"]["execution_ids"]
    [run] = _judge_runs(gateway, tenant)
    assert run["execution_id"] == run_id and run["model_resolved"] == JUDGE_MODEL
    assert run["started_at"] >= record["completed_at"]  # after the judged answer ended
    assert verdict["judge"]["cost_usd"] == pytest.approx(run["usage"]["cost_usd"])
    [judged] = emulator.requests_matching(f"Rubric {marker}.")
    assert judged.body["model"] == JUDGE_MODEL
    assert any(f"What is 2+2? {marker}" in t for t in judged.texts)  # the question, and
    assert any("## Answer" in t for t in judged.texts)  # the answer being judged

    rows = _eventually(
        lambda: _quality_by_model(gateway, tenant),
        lambda r: r.get(("speedy-b", "agent_execution"), {}).get("quality", {}).get("scored"),
    )
    quality = rows[("speedy-b", "agent_execution")]["quality"]
    assert quality["mean_score"] == 0.9 and quality["judge_cost_usd"] == pytest.approx(
        run["usage"]["cost_usd"]
    )
    assert rows[(JUDGE_MODEL, "judge")]["executions"] == 1  # its cost, apart


def test_a_malformed_judge_reply_is_asked_again_then_recorded_as_a_failure(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    marker = uuid.uuid4().hex
    gateway.cluster.emulator.script(f"Rubric {marker}.", content="I would say 9 out of 10.")
    set_default = gateway.http.put(
        "/api/v1/judge", json=_judge_spec(marker), headers=tenant.headers()
    )
    assert set_default.status_code == 200, set_default.text
    assert gateway.http.get("/api/v1/judge", headers=tenant.headers()).json()["judge"][
        "criteria"
    ] == f"Rubric {marker}."
    reply = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "speedy-b", "messages": [{"role": "user", "content": "Hi"}]},
        headers=tenant.headers(),
    )  # the tenant's default judge judges chat completions too
    assert reply.status_code == 200, reply.text
    execution_id = reply.headers["x-cb-execution-id"]
    record = _eventually(
        lambda: gateway.ended_execution(tenant, execution_id),
        lambda r: bool(r.get("feedback")),
    )
    [failure] = record["feedback"]
    assert failure["error"]["type"] == "judge_reply_invalid"
    assert "9 out of 10" in failure["error"]["message"]
    assert len(failure["judge"]["execution_ids"]) == 2  # asked once more
    assert record["quality"] == {"mean_score": None, "scored": 0}
    assert len(gateway.cluster.emulator.requests_matching(f"Rubric {marker}.")) == 2
    rows = _eventually(
        lambda: _quality_by_model(gateway, tenant),
        lambda r: r.get(("speedy-b", "chat_completion"), {}).get("quality", {}).get(
            "judge_failures"
        ),
    )
    assert rows[("speedy-b", "chat_completion")]["quality"]["judge_failures"] == 1

    # an explicit judging of one execution answers with the verdict
    gateway.cluster.emulator.script(f"Rubric {marker}.", content='{"score": 0, "reason": "No."}')
    now = gateway.http.post(
        f"/api/v1/executions/{execution_id}/judge", json=_judge_spec(marker),
        headers=tenant.headers(),
    )  # fmt: skip
    assert now.status_code == 200, now.text
    assert (now.json()["score"], now.json()["reason"]) == (0.0, "No.")
    assert now.json()["judge"]["model"] == JUDGE_MODEL and now.json()["judge"]["execution_ids"]
    bad = gateway.http.put("/api/v1/judge", json={"model": JUDGE_MODEL, "rubric": "vibes"},
                           headers=tenant.headers())  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
    unknown = gateway.http.put("/api/v1/judge", json={"model": "no-such-model"},
                               headers=tenant.headers())  # fmt: skip
    assert unknown.status_code >= 400


@SQLITE_ONLY
def test_a_streamed_execution_is_judged_once_its_stream_ended(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    marker = uuid.uuid4().hex
    gateway.cluster.emulator.script(f"Rubric {marker}.", content='{"score": 0.4, "reason": "Meh"}')
    agent = gateway.new_agent(tenant, model="speedy-b", judge=_judge_spec(marker))
    with stream(gateway, tenant, agent["id"], f"Stream it {marker}") as response:
        events = read_events(response)
    assert events[-1]["event"] == "execution_complete"
    execution_id = events[-1]["data"]["execution_id"]
    record = _eventually(
        lambda: gateway.ended_execution(tenant, execution_id), lambda r: bool(r.get("feedback"))
    )
    assert [(f["score"], f["source"]) for f in record["feedback"]] == [(0.4, "judge")]
