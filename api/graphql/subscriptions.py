"""The legacy subscriptions, each message a JSON string: an execution's stream events
(`agentExecutionStream`), a chat completion's text as it comes (`llmStream`), and the cost of
each execution of the tenant as it settles (`costUpdates`).

Served over WebSocket (`api/graphql/websocket.py`); each is scoped to the caller's tenant and
checks the scope REST checks for the same data. An unknown id (or another tenant's) is a
GraphQL error before any message. A stream ends with its execution's terminal event."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import strawberry
from strawberry.types import Info

from api.cost_feed import cost_updates
from api.graphql.context import runtime, who
from api.graphql.deprecation import deprecated
from api.graphql.execution_events import execution_events
from domain.legacy_feeds import llm_stream_message


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


@strawberry.type
class ExecutionSubscriptions:
    @strawberry.subscription(
        description="The execution's stream events, each a JSON string `{id, event, data}` "
        "(as SSE sends them): live while it runs, replayed once it has ended; the last is "
        "`execution_complete` or `error`."
    )
    async def agent_execution_stream(
        self, info: Info, execution_id: str
    ) -> AsyncGenerator[str, None]:
        caller = who(info)
        caller.require("executions:read")
        events = await execution_events(runtime(info), caller.tenant_id, execution_id)
        return _strings(events)

    @strawberry.subscription(
        deprecation_reason=deprecated("Subscription.llmStream"),
        description="A chat completion's answer as it comes (the id `llmChatCompletion` "
        "returned), each a JSON string `{id, content, finished, timestamp}`; the last is "
        "`finished` (with `error` when it failed).",
    )
    async def llm_stream(self, info: Info, request_id: str) -> AsyncGenerator[str, None]:
        caller = who(info)
        caller.require("executions:read")
        events = await execution_events(runtime(info), caller.tenant_id, request_id)
        return _llm_strings(request_id, events)


@strawberry.type
class CostSubscriptions:
    @strawberry.subscription(
        description="The cost of each execution of the tenant as it ends, from now on, each a "
        "JSON string `{userId, projectId, cost, timestamp, details}`; `userId` is echoed "
        "(the tenant's id when none is given), `projectId` is the execution's agent."
    )
    async def cost_updates(
        self, info: Info, user_id: str | None = strawberry.UNSET
    ) -> AsyncGenerator[str, None]:
        caller = who(info)
        if "tenant:admin" not in caller.scopes:  # as the budgets' REST feed
            caller.require("analytics:read")
        feed = cost_updates(
            runtime(info).read_models, caller.tenant_id, user_id or caller.tenant_id
        )
        return _strings(feed)


async def _strings(documents: AsyncGenerator[dict[str, Any], None]) -> AsyncGenerator[str, None]:
    """Each document as a JSON string; the documents are closed with this."""
    async with aclosing(documents):
        async for document in documents:
            yield _json(document)


async def _llm_strings(
    request_id: str, events: AsyncGenerator[dict[str, Any], None]
) -> AsyncGenerator[str, None]:
    chunks_sent = False
    async with aclosing(events):
        async for event in events:
            message = llm_stream_message(request_id, event, time.time(), chunks_sent)
            if message is not None:
                chunks_sent = chunks_sent or not message["finished"]
                yield _json(message)
