"""An execution's end: the live aggregate takes the runner's `Outcome` as it is, and holds
what a replay of its events holds."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from domain.execution import Execution
from domain.llm import Usage
from domain.results import Answer, Attempt, ErrorInfo, Outcome, Timings

ENDS = {"complete": "completed", "fail": "failed", "cancel": "cancelled"}


def _execution() -> Execution:
    return Execution(
        id=uuid.uuid4(), tenant_id="t", agent_id="a", agent_version=1,
        request={"prompt": "hi", "metadata": {"resource_id": "r1"}},
        model_requested="cb:smart-chat", stream=False,
    )  # fmt: skip


def _outcome() -> Outcome:
    attempt = Attempt(model="gpt-4o-mini", provider="openai", permit_ms=0.1, latency_ms=2.0)
    return Outcome(
        answer=Answer(content="Hello.", finish_reason="stop"),
        usage=Usage(prompt_tokens=12, completion_tokens=3, total_tokens=15),
        cost_usd=0.0001, model_resolved="gpt-4o-mini", provider="openai", attempts=[attempt],
        fallback_used=False, routing={"strategy": "direct"}, duration_ms=4.2,
        timings=Timings.of(1.0, [attempt]), request_metadata={"resource_id": "r1"},
    )  # fmt: skip


def _replayed(events: list[Any]) -> Execution:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    assert isinstance(aggregate, Execution)
    return aggregate


@pytest.mark.parametrize("end", list(ENDS))
def test_the_live_end_holds_what_its_replay_holds_without_validating_again(
    end: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution = _execution()
    execution.resolve_model("gpt-4o-mini", "openai", {"strategy": "direct"})
    outcome = _outcome()
    if end == "fail":
        outcome.error = ErrorInfo(type="provider_error", message="boom")
    validated: list[Any] = []
    validate = Outcome.model_validate
    monkeypatch.setattr(Outcome, "model_validate", lambda data: validated.append(data))
    getattr(execution, end)(outcome)
    assert validated == []  # taken as it is, not dumped and validated back
    monkeypatch.setattr(Outcome, "model_validate", validate)

    replayed = _replayed(execution.collect_events())
    assert execution.status == replayed.status == ENDS[end]
    assert execution.outcome == replayed.outcome == outcome
    assert execution.result == replayed.result


def test_the_live_end_keeps_its_own_copy_of_the_outcome() -> None:
    execution, outcome = _execution(), _outcome()
    execution.complete(outcome)
    outcome.answer = Answer(content="changed later")
    outcome.cost_usd = 1.0
    assert execution.outcome.answer is not None
    assert execution.outcome.answer.content == "Hello."
    assert execution.outcome.cost_usd == 0.0001
    assert "_ending" not in vars(execution)  # nothing of the end's making is left behind
