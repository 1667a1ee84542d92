"""SSE framing of an execution's event batches, with heartbeats, cancelling on disconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import ray

from domain.sse import comment, frame


async def sse_events(
    stream: Any, first: list[dict[str, Any]], heartbeat_s: float
) -> AsyncIterator[bytes]:
    """Frame each batch as it arrives; a comment line whenever nothing came for a while.

    A client that goes away cancels this generator; the actor-side stream is cancelled too.
    """
    pending: asyncio.Future[Any] | None = None
    try:
        yield b"".join(frame(e["id"], e["event"], e["data"]) for e in first)
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
            batch = await ref
            yield b"".join(frame(e["id"], e["event"], e["data"]) for e in batch)
    finally:
        if pending is not None:
            pending.cancel()
        ray.cancel(stream)
