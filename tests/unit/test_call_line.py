"""The call line between a replica and a tenant actor, over a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.call_line import CallLine, LineLost, LineStream
from actors.live_stream import LiveStream
from actors.stream_channel import StreamChannel
from domain.sse import frame_batch


class Actor:
    """Methods answering as `@replies` does; `slow` waits until released or cancelled."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.cancelled = 0

    async def echo(self, value: Any) -> dict[str, Any]:
        return {"value": value}

    async def slow(self, value: Any) -> dict[str, Any]:
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return {"value": value}

    async def broken(self) -> dict[str, Any]:
        raise RuntimeError("bug")


@pytest.fixture
async def wired() -> AsyncIterator[tuple[Actor, StreamChannel, dict[str, Any]]]:
    actor = Actor()
    channel = StreamChannel({"echo": actor.echo, "slow": actor.slow, "broken": actor.broken})
    channel._address = None
    server = await asyncio.start_server(channel._serve, "127.0.0.1", 0)
    channel._server = server
    channel._address = ("127.0.0.1", server.sockets[0].getsockname()[1])
    yield actor, channel, await channel.call_address()
    server.close()


async def test_calls_are_answered_by_id_in_any_order(wired) -> None:
    actor, _, address = wired
    line = await CallLine.open(address["host"], address["port"], address["secret"])
    slow = asyncio.ensure_future(line.call("slow", ["first"]))
    assert await line.call("echo", [{"n": 2}]) == {"value": {"n": 2}}  # overtakes the slow one
    exact = {"big": 10**30, "digits": "1" * 40, "text": "héllo 🙂 \"", "f": 0.1}
    assert await line.call("echo", [{**exact, 7: [None]}]) == {"value": {**exact, "7": [None]}}
    actor.release.set()
    assert await slow == {"value": "first"}
    assert (await line.call("nope", []))["status"] == 400
    assert (await line.call("broken", []))["error"]["type"] == "internal_error"
    line.close()


async def test_cancelling_the_caller_cancels_the_call_in_the_actor(wired) -> None:
    actor, _, address = wired
    line = await CallLine.open(address["host"], address["port"], address["secret"])
    pending = asyncio.ensure_future(line.call("slow", [1]))
    await asyncio.sleep(0.05)
    pending.cancel()
    for _ in range(50):
        if actor.cancelled:
            break
        await asyncio.sleep(0.01)
    assert actor.cancelled == 1
    assert await line.call("echo", [3]) == {"value": 3}  # the line carries on
    line.close()


async def test_a_lost_line_fails_its_calls_and_a_wrong_secret_gets_nothing(wired) -> None:
    _, _, address = wired
    line = await CallLine.open(address["host"], address["port"], address["secret"])
    pending = asyncio.ensure_future(line.call("slow", [1]))
    await asyncio.sleep(0.05)
    line.writer.transport.abort()  # the actor's process died, say
    with pytest.raises(LineLost) as lost:
        await pending
    assert lost.value.sent
    with pytest.raises(LineLost) as refused:
        await line.call("echo", [1])
    assert not refused.value.sent

    stranger = await CallLine.open(address["host"], address["port"], "not-the-secret")
    with pytest.raises(LineLost):
        await asyncio.wait_for(stranger.call("echo", [1]), 2)


# -- streams claimed on the line -------------------------------------------------------------


class Run:
    """A streamed execution in the actor: a LiveStream whose task emits when told to."""

    def __init__(self) -> None:
        self.live = LiveStream("e1", cancel_on_disconnect=True, checkpoint_s=60.0)
        self.go = asyncio.Queue[tuple[str, dict[str, Any]]]()
        self.cancelled = False
        self.live.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                event, data = await self.go.get()
                self.live.emit(event, data)
                if event == "execution_complete":
                    return
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def _until(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not reached")


async def test_a_stream_claimed_on_the_line_arrives_whole_beside_calls(wired) -> None:
    _, channel, address = wired
    connections = []
    serve = channel._serve
    channel._server.close()  # count the connections the channel accepts from here on
    server = await asyncio.start_server(
        lambda r, w: connections.append(1) or serve(r, w), *address_of(address)
    )
    line = await CallLine.open(address["host"], address["port"], address["secret"])
    runs = [Run(), Run()]
    offers = [await channel.offer(run.live, 0) for run in runs]
    assert all(line.serves(offer) for offer in offers)
    streams = [line.claim(offer["token"]) for offer in offers]
    for n, run in enumerate(runs):
        run.go.put_nowait(("content_chunk", {"delta": f"run{n}"}))
    assert await line.call("echo", ["between"]) == {"value": "between"}
    received = [b"", b""]
    for n, stream in enumerate(streams):
        while b"run" not in received[n]:
            received[n] += await stream.read(5.0) or b""
    assert await streams[0].read(0.05) is None  # quiet: the heartbeat's turn
    for run in runs:
        run.go.put_nowait(("execution_complete", {"status": "completed"}))
    for n, stream in enumerate(streams):
        while data := await stream.read(5.0):
            received[n] += data
        assert await stream.read(5.0) == b""  # the end stays the end
        assert stream.id not in line.streams  # an ended stream left the line, closed or not
        stream.close()
    assert [frame_batch(run.live.events) for run in runs] == received
    assert connections == [1]  # the line's own: no stream opened a connection
    line.close()
    server.close()


async def _claimed_run(wired: Any, delta: str) -> tuple[CallLine, Run, LineStream]:
    """A line, a run offered on the channel and claimed on that line, one chunk emitted."""
    _, channel, address = wired
    line = await CallLine.open(address["host"], address["port"], address["secret"])
    run = Run()
    stream = line.claim((await channel.offer(run.live, 0))["token"])
    run.go.put_nowait(("content_chunk", {"delta": delta}))
    return line, run, stream


async def test_a_reader_that_stops_cancels_the_run_and_an_unknown_offer_is_gone(wired) -> None:
    line, run, stream = await _claimed_run(wired, "first")
    assert b"first" in (await stream.read(5.0) or b"")
    stream.close()  # the client went away
    await _until(lambda: run.cancelled)

    unknown = line.claim("no-such-token")
    with pytest.raises(ConnectionError):
        await unknown.read(5.0)
    assert await line.call("echo", [1]) == {"value": 1}  # the line carries on
    line.close()


async def test_a_lost_line_ends_its_streams_after_what_they_received(wired) -> None:
    line, run, stream = await _claimed_run(wired, "kept")
    address = wired[2]
    await _until(lambda: stream._data)
    line.writer.transport.abort()  # the actor's process died, say
    await _until(lambda: line.closed)
    assert b"kept" in (await stream.read(5.0) or b"")
    with pytest.raises(ConnectionError):
        await stream.read(5.0)
    await _until(lambda: run.cancelled)  # the actor saw its reader go with the line
    assert not line.serves({"host": address["host"], "port": address["port"]})


def address_of(address: dict[str, Any]) -> tuple[str, int]:
    return address["host"], address["port"]
