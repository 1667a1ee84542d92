"""The live feed of a tenant's budget events as SSE, polled from the audit read model (so
every ingress replica serves the same feed, and a client resumes on any of them)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from fastapi.responses import StreamingResponse

from api.clients import ReadModels
from api.streaming import replica_id
from domain.sse import comment, frame_batch

POLL_S = 0.5
PAGE = 100


def budget_feed_response(
    read_models: ReadModels, tenant_id: str, after: int, heartbeat_s: float
) -> StreamingResponse:
    """The feed after event id `after`, as a `text/event-stream` response."""
    return StreamingResponse(
        budget_events(read_models, tenant_id, after, heartbeat_s),
        media_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "X-CB-Replica": replica_id(),
        },
    )


async def budget_events(
    read_models: ReadModels, tenant_id: str, after: int, heartbeat_s: float
) -> AsyncIterator[bytes]:
    """Each budget event after `after` once, in order, as it is projected; a comment when
    nothing came for `heartbeat_s`. Ends only when the client goes away."""
    yield comment("budget events")
    quiet_since = time.monotonic()
    while True:
        events = await read_models.budget_events(tenant_id, after, PAGE)
        if events:
            after = events[-1]["id"]
            quiet_since = time.monotonic()
            yield frame_batch(events)
            if len(events) == PAGE:
                continue
        elif time.monotonic() - quiet_since >= heartbeat_s:
            quiet_since = time.monotonic()
            yield comment("heartbeat")
        await asyncio.sleep(POLL_S)
