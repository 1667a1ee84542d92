"""Replay experiments, in process: the request's checks, the choice of sources, what a
restarted runner still has to do, the report against figures by hand, and recorded tool
answers matched to a replay's calls."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from actors.tool_box import replayed
from domain.experiment import Experiment, ExperimentRequest, pick_sources, report, state_of

VARIANTS = [{"name": "a", "model": "m-a"}, {"name": "b", "agent_id": "agent-2"}]


def _request(**extra: Any) -> dict[str, Any]:
    return {"name": "x", "source": {"agent_id": "agent-1"}, "variants": VARIANTS, **extra}


def test_a_request_names_one_target_per_variant_and_distinct_names() -> None:
    parsed = ExperimentRequest.model_validate(_request(source={"from": 1700000000, "limit": 5}))
    assert parsed.source.start == "1700000000" and parsed.budget_usd == 1.0
    assert parsed.model_dump(by_alias=True)["source"]["from"] == "1700000000"
    for bad in (
        _request(variants=[{"name": "a", "model": "m", "agent_id": "g"}]),
        _request(variants=[{"name": "a"}]),
        _request(variants=[{"name": "a", "model": "m"}, {"name": "a", "model": "n"}]),
        _request(variants=[]),
        _request(budget_usd=0),
        _request(source={"limit": 0}),
        _request(concurrency=9),
        _request(judge={"model": "m", "rubric": "vibes"}),
        {**_request(), "extra": True},
    ):
        with pytest.raises(ValidationError):
            ExperimentRequest.model_validate(bad)


def test_sources_are_the_newest_replayable_executions_in_range() -> None:
    rows = [
        {"execution_id": "old", "kind": "agent_execution", "started_at": 10.0},
        {"execution_id": "new", "kind": "chat_completion", "started_at": 30.0},
        {"execution_id": "mid", "kind": "agent_execution", "started_at": 20.0},
        {"execution_id": "judge", "kind": "judge", "started_at": 25.0},
        {"execution_id": "erased", "kind": "agent_execution", "started_at": 26.0,
         "payload": "erased"},
        {"execution_id": "late", "kind": "agent_execution", "started_at": 40.0},
    ]  # fmt: skip
    assert pick_sources(rows, 10.0, 40.0, 10) == ["new", "mid", "old"]
    assert pick_sources(rows, 10.0, 40.0, 2) == ["new", "mid"]


def _experiment() -> Experiment:
    definition = ExperimentRequest.model_validate(_request()).model_dump(mode="json",
                                                                         by_alias=True)  # fmt: skip
    return Experiment(id=uuid.uuid4(), tenant_id="t", definition=definition,
                      sources=["s1", "s2"], by="key:k")  # fmt: skip


def _run(status: str, tokens: int, cost: float, ms: float, score: float | None = None) -> dict:
    return {"execution_id": str(uuid.uuid4()), "status": status, "model": "m",
            "usage": {"prompt_tokens": tokens // 2, "completion_tokens": tokens - tokens // 2,
                      "total_tokens": tokens},
            "cost_usd": cost, "duration_ms": ms, "score": score,
            "judge_cost_usd": 0.001 if score is not None else 0.0}  # fmt: skip


def test_a_restarted_runner_does_only_what_is_not_recorded() -> None:
    experiment = _experiment()
    assert [(s, v["name"]) for s, v in experiment.pending()] == [
        ("s1", "a"), ("s1", "b"), ("s2", "a"), ("s2", "b")]  # fmt: skip
    experiment.record_run("s1", "b", _run("completed", 10, 0.5, 100.0))
    experiment.record_run("s2", "a", _run("failed", 0, 0.0, 5.0))
    assert [(s, v["name"]) for s, v in experiment.pending()] == [("s1", "a"), ("s2", "b")]
    assert experiment.spent_usd == 0.5
    # what the store gives back (its events replayed) is the same experiment
    copy = None
    for event in experiment.collect_events():
        copy = event.mutate(copy)
    assert isinstance(copy, Experiment)
    assert copy.pending() == experiment.pending() and copy.spent_usd == 0.5
    assert json.loads(json.dumps(state_of(copy)))["runs"][0]["variant"] == "b"


def test_the_report_equals_the_figures_by_hand() -> None:
    experiment = _experiment()
    a1, a2 = _run("completed", 100, 0.01, 200.0, 1.0), _run("completed", 300, 0.03, 400.0, 0.5)
    b1, b2 = _run("completed", 50, 0.002, 90.0), _run("failed", 0, 0.0, 10.0)
    for source, variant, run in (("s1", "a", a1), ("s2", "a", a2), ("s1", "b", b1),
                                 ("s2", "b", b2)):  # fmt: skip
        experiment.record_run(source, variant, run)
    experiment.end("completed")
    records = {
        "s1": {"status": "completed", "model_resolved": "gpt", "response": {"content": "orig 1"},
               "usage": {"total_tokens": 7}},
        a1["execution_id"]: {"response": {"content": "a says"}},
    }  # fmt: skip
    shown = report(state_of(experiment), records)
    a, b = shown["variants"]
    assert (a["runs"], a["succeeded"], a["success_rate"]) == (2, 2, 1.0)
    assert (a["total_tokens"], a["cost_usd"]) == (400, 0.04)
    assert a["latency_ms"] == {"p50": 200.0, "p95": 400.0}
    assert (a["mean_score"], a["scored"], a["judge_cost_usd"]) == (0.75, 2, 0.002)
    assert (b["runs"], b["succeeded"], b["success_rate"], b["mean_score"]) == (2, 1, 0.5, None)
    assert b["latency_ms"] == {"p50": 10.0, "p95": 90.0}
    assert shown["progress"] == {"runs": 4, "of": 4} and shown["status"] == "completed"
    assert shown["spent_usd"] == pytest.approx(0.042 + 0.002)
    s1 = shown["sources"][0]
    assert s1["original"] == {"status": "completed", "model": "gpt", "output": "orig 1",
                              "usage": {"total_tokens": 7}}  # fmt: skip
    assert s1["variants"]["a"]["output"] == "a says" and s1["variants"]["a"]["score"] == 1.0
    assert s1["variants"]["b"]["output"] is None  # not in the records given


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"id": "c", "function": {"name": name, "arguments": json.dumps(arguments)}}


def test_a_replayed_call_gets_the_recorded_answer_of_the_same_call_first() -> None:
    recorded = [
        {"call_id": "1", "name": "add", "arguments": {"a": 1, "b": 1}, "result": 2, "error": None},
        {"call_id": "2", "name": "add", "arguments": {"a": 2, "b": 40}, "result": 42,
         "error": None},
        {"call_id": "3", "name": "fetch", "arguments": {}, "result": None,
         "error": {"type": "tool_timeout", "message": "slow"}},
    ]  # fmt: skip
    same = replayed(_call("add", a=2, b=40), recorded)
    assert (same.result, same.error) == (42, None)
    other = replayed(_call("add", a=9, b=9), recorded)  # no such call: the next one of add
    assert other.result == 2
    failed = replayed(_call("fetch"), recorded)
    assert failed.error == {"type": "tool_timeout", "message": "slow"}
    none = replayed(_call("add", a=2, b=40), recorded)  # every add was used
    assert none.error is not None and none.error["type"] == "not_recorded"
    assert recorded == []
