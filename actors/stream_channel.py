"""The data plane of live streams and executions: a TCP listener in the tenant actor that
ingress replicas connect to (executions: `actors.call_line`).

A Ray call per chunk costs about a millisecond of CPU on each side; a socket write costs a
few microseconds. So the actor `offer`s a stream (an address and a one-time token) in reply
to the call that starts or joins it, and the replica claims it by token: on its call line to
the actor when it has one (the stream's data then shares that socket), else on a connection
of its own (send the token, read length-prefixed messages of ready-framed SSE bytes until an
empty one, the end). A claim on a line ends with a cancel message when the client goes away,
a connection of its own by closing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import logging
import secrets
import struct
from collections.abc import Callable
from typing import Any

import ray

from actors.call_line import CALL, Method, Piping, serve_calls
from actors.live_stream import LiveStream
from domain.sse import frame_batch

log = logging.getLogger(__name__)

HEADER = struct.Struct("!I")
CLAIM_TIMEOUT_S = 30.0
BACKLOG = 4096  # a burst of stream starts connects at once
TOKEN_BYTES = 24
Framer = Callable[[list[dict[str, Any]]], bytes]  # a batch of stream events as bytes to send


class StreamChannel:
    """Listens on this node's address; each offered stream is claimed once, by token, and a
    replica that knows `secret` may open a call line to `calls`."""

    def __init__(self, calls: dict[str, Method] | None = None) -> None:
        self.calls = calls or {}
        self.secret = secrets.token_urlsafe(TOKEN_BYTES)
        # offer tokens: a random prefix of this channel and a count (os.urandom per offer
        # was 3.7 % of a streaming actor's CPU); only replicas, trusted with `secret`, see one
        self._token_prefix = secrets.token_urlsafe(TOKEN_BYTES)
        self._offered = itertools.count()
        self._server: asyncio.Server | None = None
        self._address: tuple[str, int] | None = None
        self._offers: dict[str, tuple[LiveStream, int, Framer, asyncio.TimerHandle]] = {}
        self._start_lock = asyncio.Lock()

    async def offer(
        self, live: LiveStream, after: int, framer: Framer = frame_batch
    ) -> dict[str, Any]:
        """Make the events of `live` after `after` claimable, framed by `framer` (this API's
        SSE unless told); where and how to claim them."""
        host, port = await self._listening()
        token = f"{self._token_prefix}.{next(self._offered)}"
        expiry = asyncio.get_running_loop().call_later(CLAIM_TIMEOUT_S, self._expire, token)
        self._offers[token] = (live, after, framer, expiry)
        return {"host": host, "port": port, "token": token}

    async def call_address(self) -> dict[str, Any]:
        """Where and with what secret a replica opens its call line to this actor."""
        host, port = await self._listening()
        return {"host": host, "port": port, "secret": self.secret}

    def _expire(self, token: str) -> None:
        offer = self._offers.pop(token, None)
        if offer is not None:
            log.warning("stream of execution %s was never claimed", offer[0].execution_id)
            offer[0].abandon()

    async def _listening(self) -> tuple[str, int]:
        async with self._start_lock:
            if self._address is None:
                host = ray.util.get_node_ip_address()
                self._server = await asyncio.start_server(self._serve, host, 0, backlog=BACKLOG)
                self._address = (host, self._server.sockets[0].getsockname()[1])
        return self._address

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), CLAIM_TIMEOUT_S)
            if line.startswith(CALL):
                if hmac.compare_digest(line[len(CALL) :].strip(), self.secret.encode()):
                    await serve_calls(reader, writer, self.calls, self._claimed)
                return
            offer = self._take(line.strip().decode(errors="replace"))
            if offer is None:
                return
            live, after, framer = offer
            pipe = asyncio.ensure_future(_pipe(live, after, framer, writer, _message))
            gone = asyncio.ensure_future(reader.read(1))  # b"" once the reader hangs up
            await asyncio.wait({pipe, gone}, return_when=asyncio.FIRST_COMPLETED)
            for task in (pipe, gone):
                task.cancel()
            await asyncio.gather(pipe, gone, return_exceptions=True)
            live.abandon()  # in case the reader left before the pipe ever watched
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    def _take(self, token: str) -> tuple[LiveStream, int, Framer] | None:
        """The offer with this token, once."""
        offer = self._offers.pop(token, None)
        if offer is None:
            return None
        live, after, framer, expiry = offer
        expiry.cancel()
        return live, after, framer

    def _claimed(self, token: str) -> Piping | None:
        """The pipe of the offer claimed on a call line, or None when there is no such offer."""
        offer = self._take(token)
        if offer is None:
            return None
        live, after, framer = offer

        async def piping(writer: asyncio.StreamWriter, framing: Callable[[bytes], bytes]) -> None:
            try:
                await _pipe(live, after, framer, writer, framing)
            finally:
                live.abandon()  # in case the reader left before the pipe ever watched

        return piping

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def _message(data: bytes) -> bytes:
    """A length-prefixed message of a connection of the stream's own (empty: the end)."""
    return HEADER.pack(len(data)) + data


async def _pipe(
    live: LiveStream,
    after: int,
    framer: Framer,
    writer: asyncio.StreamWriter,
    framing: Callable[[bytes], bytes],
) -> None:
    """Write the stream's batches, framed by `framer` as SSE and by `framing` for the socket,
    then the end."""
    watch = live.watch(after)
    try:
        async for batch in watch:
            data = framer(batch)
            if not data:
                continue
            writer.write(framing(data))
            await writer.drain()
        writer.write(framing(b""))
        await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            await watch.aclose()
