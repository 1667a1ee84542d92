"""The live feed of a tenant's settled execution costs (GraphQL `costUpdates`), polled from
the execution history, as the budget feed (`api/budget_feed.py`) polls the audit trail: every
ingress replica serves the same feed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

from api.clients import ReadModels
from domain.legacy_feeds import CostCursor, cost_update

POLL_S = 1.0
PAGE = 100


async def cost_updates(
    read_models: ReadModels, tenant_id: str, user_id: str, since: float | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """One document per execution of the tenant that ends from `since` (now, unless told) on,
    in the order they ended, each once. Ends only when the subscriber goes away."""
    cursor = CostCursor(time.time() if since is None else since)
    while True:
        start = cursor.ask_from()
        while True:
            ended = await read_models.list_executions(
                tenant_id, {"ended_after": start, "limit": PAGE}
            )
            for execution in cursor.take(ended):
                yield cost_update(execution, user_id)
            if len(ended) < PAGE or ended[-1]["completed_at"] == start:
                break
            start = ended[-1]["completed_at"]  # a full page: read on from its last end
        await asyncio.sleep(POLL_S)
