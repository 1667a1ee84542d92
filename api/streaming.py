"""SSE responses of an execution's events, read from its tenant actor's stream channel."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from fastapi.responses import StreamingResponse
from ray import serve

from actors.stream_channel import HEADER
from api.request_metrics import OPEN_STREAMS
from domain.chat_completions import openai_error
from domain.errors import ExecutionInterrupted
from domain.sse import comment, frame, frame_batch


@dataclass
class Opened:
    """A stream to send: events already known, or a live channel connection."""

    events: list[dict[str, Any]]
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    headers: dict[str, str] = field(default_factory=dict)  # X-RateLimit-* of a new execution
    openai: bool = False  # chunks of OpenAI's chat completions, not this API's events


async def open_stream(
    offer: dict[str, Any], headers: dict[str, str] | None = None, openai: bool = False
) -> Opened:
    """Claim a tenant actor's offer (connect and send the token), or take replayed events;
    `headers` go out with the response."""
    if "events" in offer:
        return Opened(offer["events"])
    reader, writer = await asyncio.open_connection(offer["host"], offer["port"])
    writer.write(offer["token"].encode() + b"\n")
    return Opened([], reader, writer, headers or {}, openai)


def sse_response(opened: Opened, heartbeat_s: float) -> StreamingResponse:
    """The SSE response; `X-CB-Replica` names the serving replica."""
    return StreamingResponse(
        sse_events(opened, heartbeat_s),
        media_type="text/event-stream",
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
    the actor goes away first, the stream ends with an `error` event without an id: the
    client resumes from its last id and gets what the store kept.
    """
    if opened.events:
        yield frame_batch(opened.events)
    if opened.reader is None or opened.writer is None:
        return
    pending: asyncio.Future[bytes] | None = None
    OPEN_STREAMS[0] += 1
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_message(opened.reader))
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
            if not done:
                yield comment("heartbeat")
                continue
            try:
                data = pending.result()
            except (asyncio.IncompleteReadError, ConnectionError):
                gone = ExecutionInterrupted(
                    "the execution's runtime went away mid-stream; resume with Last-Event-ID"
                )
                if opened.openai:
                    yield b"data: " + json.dumps(openai_error(gone)).encode() + b"\n\n"
                else:
                    yield frame(None, "error", gone.to_dict())
                return
            pending = None
            if not data:
                return
            yield data
    finally:
        OPEN_STREAMS[0] -= 1
        if pending is not None:
            pending.cancel()
        opened.writer.close()


async def _message(reader: asyncio.StreamReader) -> bytes:
    (size,) = HEADER.unpack(await reader.readexactly(HEADER.size))
    return await reader.readexactly(size) if size else b""
