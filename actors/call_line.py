"""The call line: executions sent from an ingress replica to a tenant actor over one socket.

A Ray actor call costs about a millisecond of CPU between the two processes; a message on a
socket costs tens of microseconds. So each replica keeps one connection per tenant actor
(found, and its secret learnt, with one Ray call per actor incarnation) and multiplexes the
executions over it: length-prefixed JSON messages, `{"id", "method", "args"}` out,
`{"id", "reply"}` back in any order, `{"id", "cancel": true}` when the caller went away. The
replies are the actor methods' own (`actors.replies`). A lost line fails what it carried
with `LineLost`; the caller then goes through Ray, as after an actor's death.

A stream the actor offered (`actors.stream_channel`) is claimed on the line too:
`{"id", "claim": token}` out, then its data back as binary frames (the length's top bit set,
the id, ready-framed SSE bytes; no data: the end), or `{"id", "gone": true}` when the offer is
not there. `{"id", "cancel": true}` stops it when its reader went away. So a stream costs no
connection of its own, and many streams' chunks share one socket's reads and writes. The
line is read at once whatever each stream's client takes: what a slow client has not taken
yet waits in the replica (a stream's output is bounded by its model's tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

from domain import fast_json

log = logging.getLogger(__name__)
HEADER = struct.Struct("!I")
STREAM_ID = struct.Struct("!I")
DATA_FLAG = 1 << 31  # set in a frame's length: a stream's data, not a JSON message
INTERNAL = {"type": "internal_error", "message": "internal error"}
CALL = b"CALL "  # the first line of a call line: CALL <secret>

Method = Callable[..., Awaitable[dict[str, Any]]]
# a claimed stream's pipe: writes its data frames (made by the given framing) to the writer
Piping = Callable[[asyncio.StreamWriter, Callable[[bytes], bytes]], Awaitable[None]]
Claim = Callable[[str], Piping | None]  # the pipe of the offer with this token, if any


def encode(message: dict[str, Any]) -> bytes:
    data = fast_json.dumps(message)
    return HEADER.pack(len(data)) + data


def data_frame(stream_id: int, data: bytes) -> bytes:
    """A frame of stream `stream_id`'s data (empty: its end)."""
    return HEADER.pack((len(data) + STREAM_ID.size) | DATA_FLAG) + STREAM_ID.pack(stream_id) + data


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    message: dict[str, Any] = fast_json.loads(await reader.readexactly(size))
    return message


async def serve_calls(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    methods: dict[str, Method],
    claim: Claim | None = None,
) -> None:
    """The actor's end: run each call (and each claimed stream's pipe) as a task and write
    its reply when it is done. A cancel message, or the line closing (the replica went
    away), cancels the calls and stops the pipes."""
    running: dict[int, asyncio.Task[None]] = {}
    loop = asyncio.get_running_loop()

    async def answer(call_id: int, method: Method, args: list[Any]) -> None:
        try:
            data = encode({"id": call_id, "reply": await method(*args)})
        except Exception:  # what a Ray call would raise as a task error: a 500, not a hang
            log.exception("call %s failed", call_id)
            data = encode({"id": call_id, "reply": {"error": INTERNAL, "status": 500}})
        writer.write(data)

    async def stream(stream_id: int, piping: Piping) -> None:
        try:
            await piping(writer, functools.partial(data_frame, stream_id))
        except ConnectionError:
            pass  # the line went down: the reader sees that
        except Exception:  # the reader must not wait for an end that never comes
            log.exception("stream %s failed", stream_id)
            if not writer.is_closing():
                writer.write(encode({"id": stream_id, "gone": True}))

    try:
        while True:
            message = await read_message(reader)
            call_id = message["id"]
            if message.get("cancel"):
                task = running.get(call_id)
                if task is not None:
                    task.cancel()
                continue
            if "claim" in message:
                piping = claim(str(message["claim"])) if claim is not None else None
                if piping is None:
                    writer.write(encode({"id": call_id, "gone": True}))
                    continue
                task = loop.create_task(stream(call_id, piping))
            else:
                method = methods.get(message.get("method", ""))
                if method is None:
                    error = {"type": "invalid_request", "message": "no such call"}
                    writer.write(encode({"id": call_id, "reply": {"error": error, "status": 400}}))
                    continue
                task = loop.create_task(answer(call_id, method, message["args"]))
            running[call_id] = task
            task.add_done_callback(lambda _, i=call_id: running.pop(i, None))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        for task in list(running.values()):
            task.cancel()
        writer.close()


class LineLost(ConnectionError):
    """The line went down with this call on it; `sent`: the actor may have started it."""

    def __init__(self, sent: bool) -> None:
        super().__init__("the call line to the tenant actor was lost")
        self.sent = sent


class CallLine:
    """The replica's end of one line: calls in flight, matched to replies by id, and the
    streams claimed on it."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        address: tuple[str, int] = ("", 0),
    ) -> None:
        self.writer = writer
        self.address = address  # the actor's channel: its offers name the same host and port
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.streams: dict[int, LineStream] = {}
        self.closed = False
        self._next = 0
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))

    @classmethod
    async def open(cls, host: str, port: int, secret: str) -> CallLine:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(CALL + secret.encode() + b"\n")
        return cls(reader, writer, (host, port))

    def serves(self, offer: dict[str, Any]) -> bool:
        """Whether `offer` (a stream's) was made by the actor at this line's other end."""
        return not self.closed and (offer.get("host"), offer.get("port")) == self.address

    def claim(self, token: str) -> LineStream:
        """Claim an offered stream on this line; its data comes back as `LineStream` reads."""
        if self.closed:
            raise LineLost(sent=False)
        self._next += 1
        stream = self.streams[self._next] = LineStream(self, self._next)
        self.writer.write(encode({"id": self._next, "claim": token}))
        return stream

    async def call(self, method: str, args: list[Any]) -> dict[str, Any]:
        """The actor method's reply; cancelling the caller cancels the call in the actor."""
        if self.closed:
            raise LineLost(sent=False)
        self._next += 1
        call_id = self._next
        reply: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[call_id] = reply
        self.writer.write(encode({"id": call_id, "method": method, "args": args}))
        try:
            return await reply
        except asyncio.CancelledError:
            if not self.closed:
                self.writer.write(encode({"id": call_id, "cancel": True}))
            raise
        finally:
            self.pending.pop(call_id, None)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
                if size & DATA_FLAG:
                    self._deliver(await reader.readexactly(size & ~DATA_FLAG))
                    continue
                message = fast_json.loads(await reader.readexactly(size))
                if message.get("gone"):
                    stream = self.streams.pop(message["id"], None)
                    if stream is not None:
                        stream.lose()
                    continue
                reply = self.pending.get(message["id"])
                if reply is not None and not reply.done():
                    reply.set_result(message["reply"])
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self.close()

    def _deliver(self, frame: bytes) -> None:
        """A stream's data frame to its reader; an ended stream leaves the line (its reader,
        if it still has one, holds it)."""
        stream_id, data = STREAM_ID.unpack_from(frame)[0], frame[STREAM_ID.size :]
        stream = self.streams.get(stream_id) if data else self.streams.pop(stream_id, None)
        if stream is not None:
            stream.push(data)

    def close(self) -> None:
        """Close the line; calls still on it fail with LineLost (they may have started), its
        streams with ConnectionError once their data is read."""
        self.closed = True
        for reply in self.pending.values():
            if not reply.done():
                reply.set_exception(LineLost(sent=True))
        self.pending.clear()
        for stream in list(self.streams.values()):
            stream.lose()
        with contextlib.suppress(Exception):
            self.writer.close()
        if self._reading is not asyncio.current_task():
            self._reading.cancel()


class LineStream:
    """A stream claimed on a call line, as the replica reads it: the data received since the
    last read, in one piece."""

    def __init__(self, line: CallLine, stream_id: int) -> None:
        self.line = line
        self.id = stream_id
        self._data: list[bytes] = []
        self._ended = False
        self._lost = False
        self._waiter: asyncio.Future[None] | None = None

    def push(self, data: bytes) -> None:
        """Data from the actor; empty: the stream's end."""
        if data:
            self._data.append(data)
        else:
            self._ended = True
        self._wake()

    def lose(self) -> None:
        """The line went down, or the actor had no such offer."""
        self._lost = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def read(self, quiet_s: float | None) -> bytes | None:
        """The data received since the last read; b"" once the stream ended; None when none
        came for `quiet_s` seconds (never, with None). Raises ConnectionError once the stream
        is lost and its data read."""
        if not (self._data or self._ended or self._lost):
            loop = asyncio.get_running_loop()
            self._waiter = waiter = loop.create_future()
            timer = None if quiet_s is None else loop.call_later(quiet_s, _quiet, waiter)
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
        if self._data:
            data = self._data[0] if len(self._data) == 1 else b"".join(self._data)
            self._data = []
            return data
        if self._ended:
            return b""
        if self._lost:
            raise ConnectionError("the stream's call line to the tenant actor was lost")
        return None

    def close(self) -> None:
        """Stop reading: an unfinished stream is cancelled in the actor."""
        self.line.streams.pop(self.id, None)
        if not (self._ended or self._lost or self.line.closed):
            self.line.writer.write(encode({"id": self.id, "cancel": True}))
        self._ended = True


def _quiet(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
