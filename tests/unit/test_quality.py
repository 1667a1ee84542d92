"""Feedback and judges, in process: the request's checks, the verdict parser, the sample,
the comment sealed as payload, and the quality roll-ups against figures by hand."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from actors.event_store import EventStore
from actors.settings import Settings
from domain import shredding
from domain.execution import Execution
from domain.feedback import FeedbackRequest, quality
from domain.judging import JudgeSpec, NotAVerdict, judge_messages, parse_verdict, sampled
from domain.results import Outcome
from projections import analytics, feedback, runner
from projections.db import ReadModelDB

TENANT = str(uuid.uuid4())


def test_feedback_scores_booleans_and_refuses_the_rest() -> None:
    assert FeedbackRequest.model_validate({"score": True}).score == 1.0
    assert FeedbackRequest.model_validate({"score": False}).score == 0.0
    given = FeedbackRequest.model_validate({"score": 0.25, "label": "tone", "comment": "ok"})
    assert (given.score, given.label, given.comment, given.source) == (0.25, "tone", "ok", "user")
    for bad in ({"score": 1.5}, {"score": -0.1}, {"score": "good"}, {}, {"score": 1, "x": 1},
                {"score": 1, "source": "a b"}, {"score": 1, "label": ""}):  # fmt: skip
        with pytest.raises(ValidationError):
            FeedbackRequest.model_validate(bad)


def test_quality_figures_by_hand() -> None:
    sums = {"score_sum": 2.5, "score_count": 4, "scored_executions": 3, "scored_tokens": 600,
            "scored_cost_usd": 0.003, "judge_cost_usd": 0.0001, "judge_failures": 1}  # fmt: skip
    q = quality(sums)
    assert q["mean_score"] == 0.625 and q["scored"] == 4 and q["scored_executions"] == 3
    assert q["per_1k_tokens"] == pytest.approx(0.625 / (600 / 3 / 1000))  # 3.125
    assert q["per_usd"] == pytest.approx(0.625 / (0.003 / 3))  # 625
    assert (q["judge_cost_usd"], q["judge_failures"]) == (0.0001, 1)
    none = quality(dict.fromkeys(sums, 0))
    assert none["mean_score"] is None and none["per_1k_tokens"] is None and none["per_usd"] is None


def test_a_verdict_is_read_strictly() -> None:
    assert parse_verdict('{"score": 0.8, "reason": "right"}').score == 0.8
    fenced = parse_verdict('```json\n{"score": 1, "reason": "all there"}\n```')
    assert (fenced.score, fenced.reason) == (1.0, "all there")
    for bad in (None, "", "8/10: good", '{"score": "0.8", "reason": "x"}', '{"score": 0.8}',
                '{"score": 2, "reason": "x"}', '{"score": true, "reason": "x"}', "[0.8]",
                'Sure! {"score": 0.8, "reason": "x"}'):  # fmt: skip
        with pytest.raises(NotAVerdict):
            parse_verdict(bad)


def test_the_sample_is_stable_and_near_its_rate() -> None:
    ids = [str(uuid.UUID(int=n * 7919)) for n in range(4000)]
    assert all(sampled(i, 1.0) for i in ids) and not any(sampled(i, 0.0) for i in ids)
    share = sum(sampled(i, 0.25) for i in ids) / len(ids)
    assert 0.22 < share < 0.28
    assert [sampled(i, 0.25) for i in ids[:50]] == [sampled(i, 0.25) for i in ids[:50]]


def test_a_judge_spec_names_a_known_rubric_or_brings_its_criteria() -> None:
    with pytest.raises(ValidationError, match="criteria"):
        JudgeSpec.model_validate({"model": "cb:fastest", "rubric": "rigour"})
    own = JudgeSpec.model_validate({"model": "m", "rubric": "rigour", "criteria": "Proofs."})
    [system, user] = judge_messages(own, "prove it", "QED", [{"name": "calc", "result": 4}])
    assert "Proofs." in system["content"] and '"score"' in system["content"]
    assert "prove it" in user["content"] and "QED" in user["content"]
    assert '"calc"' in user["content"]
    with pytest.raises(ValidationError):
        JudgeSpec.model_validate({"model": "m", "sample_rate": 1.5})


def test_a_comment_and_a_judge_failure_are_payload() -> None:
    state = {"score": 0.5, "label": "x", "comment": "my words", "source": "user"}
    payload = shredding.split("Execution.FeedbackGiven", state)
    assert payload == {"comment": "my words"} and state["comment"] == shredding.ERASED
    assert state["score"] == 0.5  # the score stays in clear
    shredding.merge("Execution.FeedbackGiven", state, payload)
    assert state["comment"] == "my words"
    failed = {"judge": {"model": "m"}, "error": {"type": "judge_reply_invalid", "message": "q"}}
    payload = shredding.split("Execution.JudgeFailed", failed)
    assert failed["error"] == {"type": "judge_reply_invalid", "message": shredding.ERASED}
    assert payload == {"error": {"type": "judge_reply_invalid", "message": "q"}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield app
    app.close()


def _db(tmp_path: Path, name: str, schema: str | None = None) -> ReadModelDB:
    return ReadModelDB("sqlite:///" + str(tmp_path / name), schema=schema)


def _ended(app: EventStore, model: str, tokens: tuple[int, int], cost: float) -> Execution:
    execution = Execution(
        id=uuid.uuid4(), tenant_id=TENANT, agent_id="agent-q", agent_version=1,
        request={"prompt": "x"}, model_requested="cb:fast", stream=False,
    )  # fmt: skip
    execution.resolve_model(model, "p1", {})
    usage = {"prompt_tokens": tokens[0], "completion_tokens": tokens[1],
             "total_tokens": sum(tokens)}  # fmt: skip
    execution.complete(Outcome.model_validate(
        {"model_resolved": model, "provider": "p1", "usage": usage, "cost_usd": cost}
    ))  # fmt: skip
    return execution


def _score(execution: Execution, score: float, **judge: Any) -> None:
    source = "judge" if judge else "user"
    execution.give_feedback(str(uuid.uuid4()), score, "l", "c", source, "key:k", judge or None)


def test_quality_rollups_equal_the_figures_by_hand(store: EventStore, tmp_path: Path) -> None:
    a1 = _ended(store, "m1", (100, 100), 0.002)
    _score(a1, 1.0)
    _score(a1, 0.5, model="judge-m", cost_usd=0.0004)
    a2 = _ended(store, "m1", (300, 100), 0.004)
    _score(a2, 0.0)
    a3 = _ended(store, "m1", (50, 50), 0.001)  # never scored: not in scored_*
    a3.fail_judging({"model": "judge-m", "cost_usd": 0.0001}, {"type": "judge_reply_invalid",
                                                                 "message": "no"})  # fmt: skip
    b1 = _ended(store, "m2", (10, 10), 0.0)
    _score(b1, 1.0)
    for execution in (a1, a2, a3, b1):
        store.save(execution)
    metrics_db = _db(tmp_path, "metrics.sqlite", "analytics")
    runner.create_tables(metrics_db, runner.METRICS)
    runner.catch_up_fully(store, metrics_db, runner.METRICS)
    now = time.time()
    rows = {r["model"]: r for r in analytics.usage(metrics_db, TENANT, now - 3600, now + 60,
                                                   ["model"], {})}  # fmt: skip
    m1, m2 = rows["m1"]["quality"], rows["m2"]["quality"]
    assert rows["m1"]["executions"] == 3  # feedback adds no execution
    assert (m1["scored"], m1["scored_executions"]) == (3, 2)
    assert m1["mean_score"] == pytest.approx(0.5)
    # scored executions a1 and a2: 600 tokens, $0.006, 2 executions
    assert m1["per_1k_tokens"] == pytest.approx(0.5 / (600 / 2 / 1000))
    assert m1["per_usd"] == pytest.approx(0.5 / (0.006 / 2))
    assert m1["judge_cost_usd"] == pytest.approx(0.0005) and m1["judge_failures"] == 1
    assert m2["mean_score"] == 1.0 and m2["per_usd"] is None  # it cost nothing
    assert m2["per_1k_tokens"] == pytest.approx(1.0 / (20 / 1000))

    history_db = _db(tmp_path, "readmodels.sqlite")
    runner.create_tables(history_db)
    runner.catch_up_fully(store, history_db, runner.READ_MODELS)
    record = feedback.execution_record(history_db, TENANT, str(a1.id))
    assert record is not None and record["quality"] == {"mean_score": 0.75, "scored": 2}
    first, second = record["feedback"]
    assert (first["score"], first["source"], first["comment"]) == (1.0, "user", "c")
    assert second["source"] == "judge" and second["judge"]["model"] == "judge-m"
    failed = feedback.execution_record(history_db, TENANT, str(a3.id))
    assert failed is not None and failed["quality"]["scored"] == 0
    assert failed["feedback"][0]["error"] == {"type": "judge_reply_invalid", "message": "no"}
    metrics_db.close()
    history_db.close()


def test_each_reference_agent_ships_a_judge_fitted_to_it() -> None:
    from domain.reference_agents import REFERENCE_AGENTS
    from domain.schemas import AgentCreate, agent_definition

    judges = {a["name"]: agent_definition(AgentCreate(**a))["judge"] for a in REFERENCE_AGENTS}
    assert len(judges) == 4 and all(JudgeSpec.model_validate(j) for j in judges.values())
    assert judges["Mathematical Reasoning Specialist"]["rubric"] == "correctness"
    assert "Rigour" in judges["Mathematical Reasoning Specialist"]["criteria"]
    assert "tool results" in judges["Real Estate Investment Analyzer"]["criteria"]
