"""Which parts of an execution's events are its payload, kept apart to be sealed under a
key that erasure destroys (crypto-shredding), and what stands in for them once it has.

Payload is what a person said or was told: prompts, context and messages, answers, tool
arguments and results, error messages (a provider's may quote the prompt), streamed
content, feedback comments and judges' reasons. Everything else stays in clear for
analytics: ids, models, tokens, cost, timings, metadata, statuses, stream event ids and
kinds.

`split` takes the payload out of an event's state (returning it), `merge` puts it back,
`erase` fills the state with the `ERASED` marks a reader gets once the key is gone. Each
works on the state as `eventsourcing` stores it (a dict), keyed by the event class's name.
"""

from __future__ import annotations

import hashlib
from typing import Any

ERASED = "[erased]"
ERASED_INPUT = {"erased": True}  # an erased request, as history shows its input
BUCKET_S = 3600  # keys are made per subject and hour of start: retention sweeps by the hour
SEALED_PREFIX = "k:"  # a read-model value sealed under a payload key: k:<kid>:<token>

_ENDED = ("Execution.Completed", "Execution.Failed", "Execution.Cancelled")
SEALED_KINDS = frozenset(
    {"Execution.Started", "Execution.ToolCalled", "Execution.ToolResultRecorded",
     "Execution.Progressed", "Execution.FeedbackGiven", "Execution.JudgeFailed", *_ENDED}
)  # fmt: skip
CLEAR_REQUEST = ("metadata",)  # what of a Started event's request stays readable


def subject_ref(tenant_id: str, subject: str) -> str:
    """The reference kept for a data subject: a one-way hash, never the id itself."""
    return hashlib.sha256(f"{tenant_id}\x00{subject}".encode()).hexdigest()[:32]


def bucket(at: float) -> int:
    """The hour (as a Unix time) whose key seals what starts at `at`."""
    return int(at // BUCKET_S) * BUCKET_S


def split(kind: str, state: dict[str, Any]) -> dict[str, Any] | None:
    """Take the payload out of `state` (changed in place, the `ERASED` marks standing in
    for what went); None when it holds none."""
    if kind == "Execution.Started":
        request = state["request"]
        state["request"] = {**{k: request[k] for k in CLEAR_REQUEST if k in request},
                            **ERASED_INPUT}  # fmt: skip
        return {k: v for k, v in request.items() if k not in CLEAR_REQUEST}
    if kind == "Execution.ToolCalled":
        payload = {"arguments": state["arguments"]}
        state["arguments"] = dict(ERASED_INPUT)
        return payload
    if kind == "Execution.ToolResultRecorded":
        payload = {"result": state["result"]}
        state["result"] = ERASED
        if state.get("error"):
            payload["error"] = state["error"]
            state["error"] = {**state["error"], "message": ERASED}
        return payload
    if kind == "Execution.FeedbackGiven":  # the comment: a person's words, or a judge's reason
        payload = {"comment": state["comment"]}
        state["comment"] = None if state["comment"] is None else ERASED
        return payload
    if kind == "Execution.JudgeFailed":  # its message may quote the judged answer
        payload = {"error": state["error"]}
        state["error"] = {"type": state["error"].get("type"), "message": ERASED}
        return payload
    if kind == "Execution.Progressed":
        payload = {"stream_events": state["stream_events"]}
        state["stream_events"] = _erased_stream(state["stream_events"])
        return payload
    if kind in _ENDED:
        return _split_end(state)
    return None


def _split_end(state: dict[str, Any]) -> dict[str, Any]:
    outcome = state["outcome"]
    payload: dict[str, Any] = {"outcome": outcome, "stream_tail": state.get("stream_tail")}
    erased = dict(outcome)
    answer = outcome.get("answer")
    if answer is not None:
        erased["answer"] = {"content": ERASED, "tool_calls": [],
                            "finish_reason": answer.get("finish_reason")}  # fmt: skip
    if outcome.get("error"):
        erased["error"] = {**outcome["error"], "message": ERASED}
    if outcome.get("attempts"):
        erased["attempts"] = [
            {**a, "error": ERASED} if a.get("error") is not None else a
            for a in outcome["attempts"]
        ]
    state["outcome"] = erased
    if state.get("stream_tail") is not None:
        state["stream_tail"] = _erased_stream(state["stream_tail"])
    return payload


def _erased_stream(events: list[list[Any]]) -> list[list[Any]]:
    """Stream events with their ids and kinds, and no data."""
    return [[e[0], e[1], dict(ERASED_INPUT)] for e in events]


def merge(kind: str, state: dict[str, Any], payload: dict[str, Any]) -> None:
    """Put `split`'s payload back into `state`."""
    if kind == "Execution.Started":
        clear = {k: v for k, v in state["request"].items() if k not in ERASED_INPUT}
        state["request"] = {**clear, **payload}
    else:
        state.update(payload)


def erase(kind: str, state: dict[str, Any]) -> None:
    """Mark a split `state` whose key is gone: its `ERASED` marks stay, and a terminal
    event's outcome says its payload was erased."""
    if kind in _ENDED:
        state["outcome"]["payload_erased"] = True
