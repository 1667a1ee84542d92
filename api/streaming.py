"""SSE responses of an execution's events, read from its tenant actor's stream channel."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi.responses import StreamingResponse
from ray import serve

from actors.call_line import CallLine
from actors.stream_channel import HEADER
from api.request_metrics import OPEN_STREAMS
from domain.chat_completions import openai_error
from domain.errors import ExecutionInterrupted
from domain.sse import comment, frame, frame_batch

log = logging.getLogger(__name__)

REOPENS = 3  # times one response reopens its stream after losing the actor


class Source(Protocol):
    """A live stream's data from its tenant actor: on the replica's call line
    (`actors.call_line.LineStream`) or on a connection of its own (`SocketSource`)."""

    async def read(self, quiet_s: float | None) -> bytes | None:
        """Ready-framed SSE bytes; b"" at the end; None after `quiet_s` with nothing. Raises
        `ConnectionError` (or `IncompleteReadError`) when the actor is lost."""
        ...

    def close(self) -> None:
        """Stop reading (an unfinished stream is let go in the actor)."""
        ...


class SocketSource:
    """A stream claimed on a connection of its own: length-prefixed messages, empty at the end."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._pending: asyncio.Future[bytes] | None = None

    async def read(self, quiet_s: float | None) -> bytes | None:
        if self._pending is None:
            self._pending = asyncio.ensure_future(_message(self.reader))
        done, _ = await asyncio.wait({self._pending}, timeout=quiet_s)
        if not done:
            return None
        pending, self._pending = self._pending, None
        return pending.result()

    def close(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
        self.writer.close()


@dataclass
class Opened:
    """A stream to send: events already known, or a live source."""

    events: list[dict[str, Any]]
    source: Source | None = None
    headers: dict[str, str] = field(default_factory=dict)  # X-RateLimit-* of a new execution
    openai: bool = False  # chunks of OpenAI's chat completions, not this API's events
    # the same stream after an event id, from whichever actor serves it then (None: no reopen)
    reopen: Callable[[int], Awaitable[Opened]] | None = None


async def open_stream(
    offer: dict[str, Any],
    headers: dict[str, str] | None = None,
    openai: bool = False,
    line: CallLine | None = None,
) -> Opened:
    """Claim a tenant actor's offer, on `line` when it leads to that actor, else on a
    connection of its own; or take replayed events. `headers` go out with the response."""
    if "events" in offer:
        return Opened(offer["events"])
    if line is not None and line.serves(offer):
        source: Source = line.claim(offer["token"])
    else:
        reader, writer = await asyncio.open_connection(offer["host"], offer["port"])
        writer.write(offer["token"].encode() + b"\n")
        source = SocketSource(reader, writer)
    return Opened([], source, headers or {}, openai)


class SSEResponse(StreamingResponse):
    """A streaming response that lets its source go however it ends, even when it never
    started (the client left before the headers could be sent)."""

    def __init__(self, opened: Opened, heartbeat_s: float, headers: dict[str, str]) -> None:
        events = sse_events(opened, heartbeat_s)
        super().__init__(events, media_type="text/event-stream", headers=headers)
        self.source = opened.source

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.source is not None:
                self.source.close()  # a no-op once the relay closed it


def sse_response(opened: Opened, heartbeat_s: float) -> StreamingResponse:
    """The SSE response; `X-CB-Replica` names the serving replica."""
    return SSEResponse(
        opened,
        heartbeat_s,
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-CB-Replica": replica_id(),
            **opened.headers,
        },
    )


def replica_id() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside a Serve replica (an app built for tests or tools)
        return "local"


async def sse_events(opened: Opened, heartbeat_s: float) -> AsyncIterator[bytes]:
    """Pass on each message from the channel; a comment whenever nothing came for a while.

    A client that goes away cancels this generator, which hangs up on the tenant actor. If
    the actor goes away first, the stream is reopened after the last id passed on (`reopen`):
    the new actor runs an interrupted execution again as a new attempt, which the client sees
    as an `attempt_restarted` event and the new attempt's events. When it cannot be reopened,
    the stream ends with an `error` event without an id.
    """
    OPEN_STREAMS[0] += 1
    last_id = 0
    try:
        for _ in range(REOPENS + 1):
            if opened.events:
                yield frame_batch(opened.events)
                last_id = max((e.get("id") or 0 for e in opened.events), default=last_id)
            if opened.source is None:
                return
            try:
                async for data in _relayed(opened.source, heartbeat_s):
                    last_id = last_event_id(data, last_id)
                    yield data
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            reopened = await _reopened(opened, last_id)
            if reopened is None:
                break
            opened = reopened
        yield _gone(opened.openai)
    finally:
        OPEN_STREAMS[0] -= 1


async def _relayed(source: Source, heartbeat_s: float) -> AsyncIterator[bytes]:
    """The source's data, and a heartbeat comment for each quiet `heartbeat_s`; raises
    `IncompleteReadError` or `ConnectionError` when the actor is lost."""
    try:
        while True:
            data = await source.read(heartbeat_s)
            if data is None:
                yield comment("heartbeat")
            elif data:
                yield data
            else:
                return
    finally:
        source.close()


async def _reopened(opened: Opened, last_id: int) -> Opened | None:
    """The stream after `last_id` from the tenant actor now serving it, or None."""
    if opened.reopen is None or opened.openai:
        return None
    try:
        return await opened.reopen(last_id)
    except Exception:  # the error event says it; the client may resume later
        log.warning("stream could not be reopened after event %s", last_id, exc_info=True)
        return None


def _gone(openai: bool) -> bytes:
    gone = ExecutionInterrupted(
        "the execution's runtime went away mid-stream; resume with Last-Event-ID"
    )
    if openai:
        return b"data: " + json.dumps(openai_error(gone)).encode() + b"\n\n"
    return frame(None, "error", gone.to_dict())


def last_event_id(data: bytes, previous: int) -> int:
    """The id of the last event with one in a run of whole SSE frames, else `previous`."""
    at = data.rfind(b"\n\nid: ")
    if at >= 0:
        at += 6
    elif data.startswith(b"id: "):
        at = 4
    else:
        return previous
    return int(data[at : data.index(b"\n", at)])


async def _message(reader: asyncio.StreamReader) -> bytes:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return await reader.readexactly(size) if size else b""
