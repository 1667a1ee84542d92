"""The call line: executions sent from an ingress replica to a tenant actor over one socket.

A Ray actor call costs about a millisecond of CPU between the two processes; a message on a
socket costs tens of microseconds. So each replica keeps one connection per tenant actor
(found, and its secret learnt, with one Ray call per actor incarnation) and multiplexes the
executions over it: length-prefixed JSON messages, `{"id", "method", "args"}` out,
`{"id", "reply"}` back in any order, `{"id", "cancel": true}` when the caller went away. The
replies are the actor methods' own (`actors.replies`). A lost line fails what it carried
with `LineLost`; the caller then goes through Ray, as after an actor's death.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import struct
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)
HEADER = struct.Struct("!I")
INTERNAL = {"type": "internal_error", "message": "internal error"}
CALL = b"CALL "  # the first line of a call line: CALL <secret>

Method = Callable[..., Awaitable[dict[str, Any]]]


def encode(message: dict[str, Any]) -> bytes:
    data = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(data)) + data


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any]:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    message: dict[str, Any] = json.loads(await reader.readexactly(size))
    return message


async def serve_calls(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, methods: dict[str, Method]
) -> None:
    """The actor's end: run each call as a task and write its reply when it is done. A
    cancel message, or the line closing (the replica went away), cancels the calls."""
    running: dict[int, asyncio.Task[None]] = {}

    async def answer(call_id: int, method: Method, args: list[Any]) -> None:
        try:
            data = encode({"id": call_id, "reply": await method(*args)})
        except Exception:  # what a Ray call would raise as a task error: a 500, not a hang
            log.exception("call %s failed", call_id)
            data = encode({"id": call_id, "reply": {"error": INTERNAL, "status": 500}})
        writer.write(data)

    try:
        while True:
            message = await read_message(reader)
            call_id = message["id"]
            if message.get("cancel"):
                task = running.get(call_id)
                if task is not None:
                    task.cancel()
                continue
            method = methods.get(message.get("method", ""))
            if method is None:
                error = {"type": "invalid_request", "message": "no such call"}
                writer.write(encode({"id": call_id, "reply": {"error": error, "status": 400}}))
                continue
            task = asyncio.get_running_loop().create_task(answer(call_id, method, message["args"]))
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
    """The replica's end of one line: calls in flight, matched to replies by id."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = False
        self._next = 0
        self._reading = asyncio.get_running_loop().create_task(self._read(reader))

    @classmethod
    async def open(cls, host: str, port: int, secret: str) -> CallLine:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(CALL + secret.encode() + b"\n")
        return cls(reader, writer)

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
                message = await read_message(reader)
                reply = self.pending.get(message["id"])
                if reply is not None and not reply.done():
                    reply.set_result(message["reply"])
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Close the line; calls still on it fail with LineLost (they may have started)."""
        self.closed = True
        for reply in self.pending.values():
            if not reply.done():
                reply.set_exception(LineLost(sent=True))
        self.pending.clear()
        with contextlib.suppress(Exception):
            self.writer.close()
        if self._reading is not asyncio.current_task():
            self._reading.cancel()
