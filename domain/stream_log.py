"""A streamed execution's numbered events: how they are stored and replayed after an id."""

from __future__ import annotations

from typing import Any

from domain.errors import ResumeUnavailable

TERMINAL_EVENTS = ("execution_complete", "error")

# [id, event, data-without-execution_id]: the compact form kept in the event store
Packed = list[Any]


def pack(events: list[dict[str, Any]]) -> list[Packed]:
    """Stream events as stored: the execution id is left out of every one."""
    return [
        [e["id"], e["event"], {k: v for k, v in e["data"].items() if k != "execution_id"}]
        for e in events
    ]


def unpack(packed: list[Packed], execution_id: str) -> list[dict[str, Any]]:
    return [
        {"id": i, "event": kind, "data": {"execution_id": execution_id, **data}}
        for i, kind, data in packed
    ]


def terminal_event(status: str, result: dict[str, Any], execution_id: str) -> tuple[str, Any]:
    """The last event of a finished stream, rebuilt from the execution's recorded end."""
    if status == "completed":
        return "execution_complete", result
    if status == "cancelled":
        return "error", {
            "type": "execution_cancelled",
            "message": "the execution was cancelled when its client went away",
            "execution_id": execution_id,
        }
    return "error", {**(result.get("error") or {}), "execution_id": execution_id}


def replay(
    execution_id: str,
    stored: list[Packed],
    after: int,
    terminal: tuple[str, Any] | None,
    complete: bool,
) -> list[dict[str, Any]]:
    """Every event after `after`, ending with the terminal one if the execution finished.

    `complete` says whether `stored` holds every event sent before the terminal one (false
    when the runtime died mid-stream). An id that cannot be replayed exactly raises.
    """
    last_stored = stored[-1][0] if stored else 0
    last = last_stored + (1 if terminal is not None else 0)
    replayable = last if complete else last_stored
    if after > replayable:
        raise ResumeUnavailable(
            f"event {after} cannot be replayed; the recorded stream ends at {replayable}",
            execution_id=execution_id,
            details={"last_event_id": after, "replayable_to": replayable},
        )
    events = unpack([p for p in stored if p[0] > after], execution_id)
    if terminal is not None and after < last:
        events.append({"id": last, "event": terminal[0], "data": terminal[1]})
    return events
