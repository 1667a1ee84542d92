"""Collaborations, in process: a definition's checks (cycles, unknown steps, references and
inputs), templates filled from inputs and earlier outputs (JSON paths too), the run
aggregate's bookkeeping (ready steps, a resume's numbering) and its stream rebuilt from
recorded events in the order it was sent, and the live stream log handing events out in
order while a number is still being recorded."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from actors.collaborations import RunLog
from domain.collaboration import CollaborationDefinition, TemplateError, checked, render
from domain.collaboration_run import (
    EPOCH,
    INTERRUPTED,
    CollaborationRun,
    as_ranges,
    rebuilt_stream,
    state_of,
)
from domain.errors import InvalidRequest


def _step(step_id: str, text: str = "go", *deps: str, **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "model": "m", "input": text, "depends_on": list(deps), **extra}


def _definition(*steps: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "d", "inputs": {"topic": None}, "steps": list(steps), **extra}


DIAMOND = _definition(
    _step("c", "merge {{steps.a.output}} and {{steps.b.output.verdict}}", "a", "b"),
    _step("a", "look at {{inputs.topic}}"),
    _step("b", "judge {{inputs.topic}}"),
)


def test_a_definition_is_ordered_and_its_output_is_its_one_last_step() -> None:
    parsed = checked(DIAMOND)
    assert [s.id for s in parsed.steps] == ["a", "b", "c"]  # dependencies first
    assert parsed.output == "c"
    assert parsed.dependents("a") == {"c"}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (_definition(_step("a", "x", "b"), _step("b", "y", "a")), "cycle"),
        (_definition(_step("a", "x", "zz")), "unknown step 'zz'"),
        (_definition(_step("a", "{{inputs.nope}}")), "undeclared input 'nope'"),
        (_definition(_step("a"), _step("b", "{{steps.a.output}}")), "does not depend"),
        (_definition(_step("a", "{{steps.q.output}}")), "unknown step 'q'"),
        (_definition(_step("a", "{{ whatever }}")), "unknown reference"),
        (_definition(_step("a"), _step("b")), "name the output step"),
        (_definition(_step("a"), output="b"), "unknown step 'b'"),
        (_definition(_step("a"), _step("a")), "step ids must differ"),
        (_definition({"id": "a", "input": "x"}), "either agent_id or model"),
        (
            _definition({"id": "a", "agent_id": "g", "system_prompt": "s", "input": "x"}),
            "system_prompt goes with model",
        ),
        ({**_definition(_step("a")), "inputs": {"n": {"type": "nonsense"}}}, "not a JSON schema"),
        (_definition(_step("a", "x", on_failure="shrug")), "on_failure"),
    ],
)
def test_a_bad_definition_is_refused_naming_the_problem(body: dict[str, Any], says: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        checked(body)
    assert says in raised.value.message


def test_inputs_are_checked_by_their_schemas() -> None:
    parsed = checked(
        {
            **_definition(_step("a", "{{inputs.n}}")),
            "inputs": {"n": {"type": "integer", "minimum": 1}},
        }
    )
    parsed.check_inputs({"n": 3})
    for given, param in (({}, "inputs.n"), ({"n": 0}, "inputs.n"), ({"n": 1, "m": 2}, "inputs.m")):
        with pytest.raises(InvalidRequest) as raised:
            parsed.check_inputs(given)
        assert raised.value.details["param"] == param


def test_templates_fill_inputs_outputs_and_json_paths() -> None:
    inputs = {"topic": "tides", "limits": {"max": 5, "tags": ["a", "b"]}}
    outputs = {
        "a": "plain text",
        "b": '```json\n{"verdict": "buy", "scores": [1, 2]}\n```',
        "f": {"error": {"type": "provider_error", "message": "boom"}},
    }
    text = (
        "{{inputs.topic}} | {{ inputs.limits.max }} | {{inputs.limits}} | {{steps.a.output}}"
        " | {{steps.b.output.verdict}} | {{steps.b.output.scores.1}}"
        " | {{steps.f.output.error.type}}"
    )
    assert render(text, inputs, outputs) == (
        'tides | 5 | {"max": 5, "tags": ["a", "b"]} | plain text | buy | 2 | provider_error'
    )
    with pytest.raises(TemplateError, match="not JSON"):
        render("{{steps.a.output.x}}", inputs, outputs)
    with pytest.raises(TemplateError, match=r"steps\.b\.output\.missing is not there"):
        render("{{steps.b.output.missing}}", inputs, outputs)


def _run() -> CollaborationRun:
    definition = checked(DIAMOND).model_dump(mode="json")
    return CollaborationRun(
        id=uuid.uuid4(),
        tenant_id="t",
        collaboration_id=None,
        version=None,
        definition=definition,
        inputs={"topic": "x"},
        by="key:1",
    )


def test_steps_become_ready_as_their_dependencies_finish() -> None:
    run = _run()
    assert run.ready() == ["a", "b"]
    run.start_step("a", "e1", "look at x", 2)
    run.start_step("b", "e2", "judge x", 3)
    assert run.ready() == []
    run.complete_step("a", "e1", "A", {"total_tokens": 5, "cost_usd": 0.1}, 12.0, [[4, 5]], 6)
    run.fail_step("b", "e2", {"type": "timeout", "message": "t"}, {"cost_usd": 0.05}, False, [], 7)
    assert run.ready() == ["b"]  # its retry
    run.start_step("b", "e3", "judge x", 8)
    run.fail_step("b", "e3", {"type": "timeout", "message": "t"}, None, True, [], 9)
    assert run.ready() == ["c"]
    state = state_of(run)
    b = next(s for s in state["steps"] if s["id"] == "b")
    assert (b["status"], b["attempts"], b["execution_ids"]) == ("failed", 2, ["e2", "e3"])
    assert state["usage"]["cost_usd"] == pytest.approx(0.15)
    assert state["usage"]["total_tokens"] == 5


def test_a_resumed_run_numbers_its_events_above_any_sent_and_marks_interrupted_steps() -> None:
    run = _run()
    run.start_step("a", "e1", "look", 2)
    first = run.resume()
    assert first == EPOCH + 1
    assert run.steps["a"]["status"] == "retrying" and run.steps["a"]["error"] == INTERRUPTED
    assert run.ready() == ["a", "b"]
    assert run.log[-1] == (EPOCH, "run_resumed", {"interrupted": ["a"]})


def test_the_stream_is_rebuilt_in_the_order_it_was_sent() -> None:
    run = _run()
    run.start_step("a", "e1", "look", 2)
    run.start_step("b", "e2", "judge", 3)
    # a's chunks went out as 4 and 6, b's as 5; b ended (7) before a (8)
    run.complete_step("b", "e2", "B", {}, 1.0, as_ranges([5]), 7)
    run.complete_step("a", "e1", "A", {}, 1.0, as_ranges([4, 6]), 8)
    recorded = {
        "e1": [
            {"event": "content_chunk", "data": {"delta": "A1"}},
            {"event": "content_chunk", "data": {"delta": "A2"}},
        ],
        "e2": [{"event": "content_chunk", "data": {"delta": "B1"}}],
    }
    stream = rebuilt_stream(run, recorded, 0)
    assert [e["id"] for e in stream] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert [(e["event"], e["data"].get("step_id")) for e in stream[3:6]] == [
        ("content_chunk", "a"),
        ("content_chunk", "b"),
        ("content_chunk", "a"),
    ]
    assert [e["id"] for e in rebuilt_stream(run, recorded, 5)] == [6, 7, 8]
    assert as_ranges([1, 2, 3, 7, 8, 10]) == [[1, 3], [7, 8], [10, 10]]


async def test_the_live_log_holds_back_events_behind_a_number_being_recorded() -> None:
    log = RunLog([{"id": 1, "event": "run_start", "data": {}}], 2)
    held = log.reserve()  # 2: a step's end, being recorded
    log.emit("content_chunk", {"delta": "x"})  # 3
    assert [e["id"] for e in log.ready(0)] == [1]
    waiting = asyncio.ensure_future(log.after(1, 5.0))
    await asyncio.sleep(0)
    log.put(held, "step_complete", {})
    assert [e["id"] for e in await waiting] == [2, 3]
    failed = log.reserve()
    log.put(failed, None, {})  # its change failed: nothing to send, nothing held back
    log.emit("run_complete", {})
    assert [e["id"] for e in log.ready(3)] == [5]


def test_a_definition_round_trips_through_its_own_dump() -> None:
    parsed = checked(DIAMOND)
    again = CollaborationDefinition.model_validate(parsed.model_dump(mode="json"))
    assert again == parsed
