"""The call line between a replica and a tenant actor, over a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from actors.call_line import CallLine, LineLost
from actors.stream_channel import StreamChannel


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
