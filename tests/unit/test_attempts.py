"""A restarted attempt's rules and numbering: which interrupted executions may run again,
the ids of the new attempt's stream, and the last id a relayed run of frames carries."""

from __future__ import annotations

import asyncio

from actors.live_stream import LiveStream
from api.streaming import last_event_id
from domain import stream_log
from domain.attempts import ATTEMPT_ID_SPAN, MAX_ATTEMPTS, first_id_before, may_restart
from domain.sse import frame, frame_batch


def test_only_a_clients_execution_without_outside_effects_may_run_again() -> None:
    pure = [{"name": "roi_calculator"}, {"name": "mortgage_calculator"}]
    assert may_restart("agent_execution", 1, [])
    assert may_restart("chat_completion", 2, pure)
    assert not may_restart("agent_execution", 1, [*pure, {"name": "send_email"}])  # an MCP tool
    assert not may_restart("agent_execution", MAX_ATTEMPTS, [])
    assert not may_restart("collaboration_step", 1, [])
    assert not may_restart("judge", 1, [])


async def test_a_restarted_attempts_ids_start_above_any_earlier_id() -> None:
    before = first_id_before(2)
    assert first_id_before(1) == 0 and before == ATTEMPT_ID_SPAN
    live = LiveStream("e", cancel_on_disconnect=False, checkpoint_s=60.0, first_id_before=before)
    live.emit("attempt_restarted", {"attempt": 2})
    live.emit("content_chunk", {"delta": "hi"})
    assert [e["id"] for e in live.events] == [before + 1, before + 2]
    assert live.last_id == before + 2

    async def first_batch(after: int) -> list[int]:
        watch = live.watch(after)
        batch = await anext(watch)
        await watch.aclose()
        return [e["id"] for e in batch]

    # a client anywhere in the earlier attempt gets the whole new one; inside it, the rest
    assert await first_batch(0) == [before + 1, before + 2]
    assert await first_batch(37) == [before + 1, before + 2]
    assert await first_batch(before + 1) == [before + 2]
    await asyncio.sleep(0)


def test_the_recorded_stream_of_two_attempts_replays_exactly_after_any_delivered_id() -> None:
    before = first_id_before(2)
    first = [[1, "execution_start", {}], [2, "content_chunk", {"delta": "a"}]]  # checkpointed
    second = [
        [before + 1, "attempt_restarted", {"attempt": 2}],
        [before + 2, "content_chunk", {"delta": "b"}],
    ]
    stored = first + second
    terminal = ("execution_complete", {"status": "completed"})

    def ids(after: int) -> list[int]:
        return [e["id"] for e in stream_log.replay("e", stored, after, terminal, True)]

    assert ids(0) == [1, 2, before + 1, before + 2, before + 3]
    # 5 was delivered by the first attempt but never checkpointed: nothing is missing after it
    assert ids(5) == [before + 1, before + 2, before + 3]
    assert ids(before + 2) == [before + 3]


def test_the_last_event_id_of_relayed_frames() -> None:
    batch = frame_batch(
        [
            {"id": 7, "event": "content_chunk", "data": {"delta": "my id: 99\n\nid: 98"}},
            {"id": 8, "event": "usage_update", "data": {"total_tokens": 3}},
        ]
    )
    assert last_event_id(batch, 0) == 8
    assert last_event_id(frame(12, "content_chunk", {"delta": "x"}), 8) == 12
    assert last_event_id(frame(None, "error", {"type": "x"}), 12) == 12  # no id: it stands
    assert last_event_id(b": heartbeat\n\n", 12) == 12
