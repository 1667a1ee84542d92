"""LiveStream's end: its readers stop when its run does, with a terminal event or without."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors.live_stream import LiveStream, checkpoint_interval


async def _read(live: LiveStream) -> list[dict[str, Any]]:
    """Every event a reader from the start gets; fails (rather than waits on) a stream that
    never ends."""

    async def collect() -> list[dict[str, Any]]:
        return [event async for batch in live.watch(0) for event in batch]

    return await asyncio.wait_for(collect(), timeout=5)


async def test_a_run_that_ends_without_a_terminal_event_ends_its_stream_with_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = LiveStream("e-1", cancel_on_disconnect=False, checkpoint_s=60.0)

    async def run() -> None:
        live.emit("execution_start", {"execution_id": "e-1"})
        await asyncio.sleep(0.05)  # the reader is waiting by now

    live.task = asyncio.get_running_loop().create_task(run())
    events = await _read(live)
    assert [e["event"] for e in events] == ["execution_start", "error"]
    error = events[-1]["data"]
    assert (error["type"], error["execution_id"]) == ("internal_error", "e-1")
    assert "ended without a terminal event" in caplog.text


async def test_a_run_that_raises_ends_its_stream_with_an_error_and_logs_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    live = LiveStream("e-2", cancel_on_disconnect=False, checkpoint_s=60.0)

    async def run() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("a bug's detail")

    live.task = asyncio.get_running_loop().create_task(run())
    events = await _read(live)
    assert [e["event"] for e in events] == ["error"]
    assert "a bug's detail" not in str(events)  # in the log, not in the stream
    assert "a bug's detail" in caplog.text


async def test_a_terminal_event_or_a_cancel_ends_the_stream_with_nothing_added() -> None:
    live = LiveStream("e-3", cancel_on_disconnect=False, checkpoint_s=60.0)

    async def run() -> None:
        await asyncio.sleep(0.05)
        live.emit("execution_complete", {"status": "completed"})

    live.task = asyncio.get_running_loop().create_task(run())
    assert [e["event"] for e in await _read(live)] == ["execution_complete"]
    await asyncio.sleep(0)  # the done callback has run: nothing more was emitted
    assert [e["event"] for e in live.events] == ["execution_complete"]

    cancelled = LiveStream("e-4", cancel_on_disconnect=False, checkpoint_s=60.0)
    cancelled.task = asyncio.get_running_loop().create_task(asyncio.sleep(10))
    reading = asyncio.ensure_future(_read(cancelled))
    await asyncio.sleep(0.05)
    cancelled.task.cancel()
    assert await reading == []


def test_many_live_streams_checkpoint_less_often_together() -> None:
    assert checkpoint_interval(600, 100.0) == 6.0  # 600 streams: 100 checkpoints a second
    assert checkpoint_interval(50, 100.0) == 0.5  # below the base interval: the base applies
    assert checkpoint_interval(5000, 0.0) == 0.0  # no bound
    streams = [0]
    live = LiveStream("e-5", False, checkpoint_s=0.0, pace=lambda: streams[0] / 100.0)
    assert not live.checkpoint_due()  # nothing to checkpoint yet
    live.emit("content_chunk", {"delta": "a"})
    assert live.checkpoint_due()  # alone: at the base interval
    live.take_unrecorded()
    live.emit("content_chunk", {"delta": "b"})
    streams[0] = 1000  # now one of a thousand: every 10 s
    assert not live.checkpoint_due()
    live._last_checkpoint -= 10.0
    assert live.checkpoint_due()


async def test_watchers_get_every_event_when_another_leaves_and_when_none_was_waiting() -> None:
    live = LiveStream("e-5", cancel_on_disconnect=False, checkpoint_s=60.0)
    go = asyncio.Event()

    async def run() -> None:
        live.emit("execution_start", {})
        await go.wait()
        for n in range(3):  # emitted together: the watchers are not waiting between them
            live.emit("content_chunk", {"delta": str(n)})
        await asyncio.sleep(0.02)
        live.emit("content_chunk", {"delta": "3"})
        live.emit("execution_complete", {})

    live.task = asyncio.get_running_loop().create_task(run())
    staying = asyncio.ensure_future(_read(live))
    leaving = asyncio.ensure_future(_read(live))
    await asyncio.sleep(0.02)  # both wait for what comes after the start
    leaving.cancel()
    await asyncio.sleep(0)
    go.set()
    events = await staying
    assert [e["event"] for e in events] == ["execution_start"] + ["content_chunk"] * 4 + [
        "execution_complete"
    ]
    assert [e["data"]["delta"] for e in events[1:5]] == ["0", "1", "2", "3"]
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5, 6]
    late = await _read(live)  # a reader after the end gets the whole stream at once
    assert late == events
