"""An execution's stream events for a GraphQL subscription: live from its tenant actor while
it runs, replayed from the event store once it has ended, as `GET
/api/v1/executions/{id}/stream` gives them, but as dicts (`{"id"?, "event", "data"}`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from api.ids import UUID_PATTERN
from api.runtime import Runtime
from api.streaming import Opened
from domain.errors import ExecutionInterrupted, NotFound
from domain.stream_log import TERMINAL_EVENTS

RESUMES = 3  # a live stream lost mid-way is resumed (from the store) this many times
SETTLE_POLL_S = 0.5  # how often the history is read for the end of an unstreamed execution


async def execution_events(
    runtime: Runtime, tenant_id: str, execution_id: str
) -> AsyncGenerator[dict[str, Any], None]:
    """The events of the tenant's execution, from the first to the terminal one.

    Raises NotFound here, before any event, for an id the tenant has no execution under (so
    another tenant's execution is not found either). An execution that was not streamed
    gives one event when it has ended: `execution_complete` with its result, or `error`."""
    if not UUID_PATTERN.match(execution_id):
        raise NotFound(f"execution {execution_id} not found")
    found = await runtime.read_models.get_execution(tenant_id, execution_id)
    if found is None:
        raise NotFound(f"execution {execution_id} not found")
    if found["stream"]:
        return _streamed(runtime, tenant_id, execution_id)
    return _settled(runtime, tenant_id, found)


async def _streamed(
    runtime: Runtime, tenant_id: str, execution_id: str
) -> AsyncGenerator[dict[str, Any], None]:
    """Live or replayed events; a live stream that breaks is resumed after the last id seen."""
    client = runtime.tenant(tenant_id)
    after = 0
    for _ in range(RESUMES + 1):
        opened = await client.resume_stream(execution_id, after)
        try:
            async with aclosing(_opened_events(opened)) as events:
                async for event in events:
                    after = event.get("id", after)
                    yield event
                    if event["event"] in TERMINAL_EVENTS:
                        return
            return  # the stream ended without a terminal event (the run was stopped)
        except (asyncio.IncompleteReadError, ConnectionError):
            await asyncio.sleep(0.2)  # the actor went away mid-stream: ask again
    gone = ExecutionInterrupted("the execution's runtime went away mid-stream")
    yield {"event": "error", "data": {**gone.to_dict(), "execution_id": execution_id}}


async def _opened_events(opened: Opened) -> AsyncGenerator[dict[str, Any], None]:
    """The events of an opened stream: those given, then those read from its channel until
    its end; the channel is closed however this ends."""
    for event in opened.events:
        yield event
    if opened.source is None:
        return
    try:
        while data := await opened.source.read(None):
            for event in parse_sse(data):
                yield event
    finally:
        opened.source.close()


def parse_sse(data: bytes) -> list[dict[str, Any]]:
    """SSE bytes as framed by `domain.sse` back into events; comments are left out."""
    events = []
    for block in data.decode().split("\n\n"):
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith("id: "):
                event["id"] = int(line[4:])
            elif line.startswith("event: "):
                event["event"] = line[7:]
            elif line.startswith("data: "):
                event["data"] = json.loads(line[6:])
        if "event" in event:
            events.append(event)
    return events


async def _settled(
    runtime: Runtime, tenant_id: str, found: dict[str, Any]
) -> AsyncGenerator[dict[str, Any], None]:
    """The end of an execution that was not streamed, once the history has it."""
    execution_id = found["execution_id"]
    while found["status"] == "running":
        await asyncio.sleep(SETTLE_POLL_S)
        found = await runtime.read_models.get_execution(tenant_id, execution_id) or found
    yield end_event(found)


def end_event(found: dict[str, Any]) -> dict[str, Any]:
    """The terminal event of an ended execution, from its history view."""
    if found["status"] == "completed":
        data = {
            k: found.get(k)
            for k in ("execution_id", "agent_id", "status", "response", "usage", "metadata")
        }
        return {"event": "execution_complete", "data": data}
    error = found.get("error") or {
        "type": f"execution_{found['status']}",
        "message": f"the execution was {found['status']}",
    }
    return {"event": "error", "data": {**error, "execution_id": found["execution_id"]}}
