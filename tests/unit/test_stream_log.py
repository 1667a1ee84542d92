"""Stored stream events (`domain/stream_log.py`) and their replay after an event id."""

from __future__ import annotations

import pytest

from domain import errors, stream_log


def _stored(n: int) -> list[list]:
    return stream_log.pack(
        [
            {"id": i, "event": "content_chunk", "data": {"execution_id": "x", "delta": f"d{i}"}}
            for i in range(1, n + 1)
        ]
    )


def test_replay_sends_each_event_after_the_id_once_and_ends_with_the_terminal_one() -> None:
    stored = _stored(4)
    assert "execution_id" not in stored[0][2]  # not repeated in every stored event
    terminal = stream_log.terminal_event("completed", {"status": "completed"}, "x")
    for after in range(0, 6):
        events = stream_log.replay("x", stored, after, terminal, complete=True)
        assert [e["id"] for e in events] == list(range(after + 1, 6))
        assert all(e["data"]["execution_id"] == "x" for e in events[:-1] if events)
    assert stream_log.replay("x", stored, 2, terminal, True)[-1]["event"] == "execution_complete"


def test_replay_refuses_ids_it_cannot_replay_exactly() -> None:
    interrupted = stream_log.terminal_event("failed", {"error": {"type": "x"}}, "x")
    events = stream_log.replay("x", _stored(3), 3, interrupted, complete=False)
    assert [e["id"] for e in events] == [4] and events[0]["event"] == "error"
    with pytest.raises(errors.ResumeUnavailable) as lost:
        stream_log.replay("x", _stored(3), 4, interrupted, complete=False)
    assert lost.value.details == {"last_event_id": 4, "replayable_to": 3}
    with pytest.raises(errors.ResumeUnavailable):
        stream_log.replay("x", _stored(3), 9, None, complete=False)  # still running
    cancelled = stream_log.terminal_event("cancelled", {}, "x")
    assert cancelled[1]["type"] == "execution_cancelled"
