"""SSE framing of an execution's event batches, with heartbeats, cancelling on disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ray
from fastapi.responses import StreamingResponse
from ray import serve

from domain.sse import comment, frame


def sse_response(stream: Any, first: list[dict[str, Any]], heartbeat_s: float) -> StreamingResponse:
    """The SSE response of an actor-side stream; `X-CB-Replica` names the serving replica."""
    return StreamingResponse(
        sse_events(stream, first, heartbeat_s),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-CB-Replica": _replica_id(),
        },
    )


def _replica_id() -> str:
    try:
        return serve.get_replica_context().replica_id.unique_id
    except Exception:  # outside a Serve replica (an app built for tests or tools)
        return "local"


async def sse_events(
    stream: Any, first: list[dict[str, Any]], heartbeat_s: float
) -> AsyncIterator[bytes]:
    """Frame each batch as it arrives; a comment line whenever nothing came for a while.

    A client that goes away cancels this generator; the actor-side stream is cancelled too.
    """
    pending: asyncio.Future[Any] | None = None
    try:
        if first:
            yield _frames(first)
        while True:
            if pending is None:
                pending = asyncio.ensure_future(stream.__anext__())
            done, _ = await asyncio.wait({pending}, timeout=heartbeat_s)
            if not done:
                yield comment("heartbeat")
                continue
            try:
                ref = pending.result()
            except StopAsyncIteration:
                return
            pending = None
            yield _frames(await ref)
    finally:
        if pending is not None:
            pending.cancel()
        ray.cancel(stream)


def _frames(batch: list[dict[str, Any]]) -> bytes:
    """A batch as SSE; an event without an id (a resume refused mid-way) is sent without one."""
    return b"".join(frame(e.get("id"), e["event"], e["data"]) for e in batch)
