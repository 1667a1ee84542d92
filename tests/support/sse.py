"""Server-sent events: start a streamed execution and parse what it sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx

from tests.support.client import ApiClient, Tenant


def iter_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse an SSE body into events (id, event, data) as they arrive; comments are heartbeats."""
    current: dict[str, Any] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield {"event": "heartbeat"}
        elif line.startswith("id: "):
            current["id"] = int(line[4:])
        elif line.startswith("event: "):
            current["event"] = line[7:]
        elif line.startswith("data: "):
            current["data"] = json.loads(line[6:])
        elif not line and current:
            yield current
            current = {}


def read_events(response: httpx.Response) -> list[dict[str, Any]]:
    return list(iter_events(response))


def stream(gateway: ApiClient, tenant: Tenant, agent_id: str, prompt: str, **body: Any) -> Any:
    """`POST …/execute/stream` as a context manager giving the streaming response."""
    return gateway.http.stream(
        "POST",
        f"/api/v1/agents/{agent_id}/execute/stream",
        json={"prompt": prompt, **body},
        headers=tenant.headers(),
    )
