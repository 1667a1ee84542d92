"""The event store: an `eventsourcing` application whose calls run off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate

from actors.settings import Settings

T = TypeVar("T")


class EventStore(Application[UUID]):
    """Tenants, agents and executions; persistence chosen by environment, not code."""

    name = "CircuitBreaker"


class AsyncEventStore:
    """Runs the synchronous store on a small thread pool so actors never block on it."""

    def __init__(self, settings: Settings, threads: int = 4) -> None:
        self.app = EventStore(env=settings.store_env())
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def save(self, *aggregates: Aggregate) -> None:
        await self.run(self.app.save, *aggregates)

    async def get(self, aggregate_id: UUID) -> Any:
        return await self.run(self.app.repository.get, aggregate_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False)
        self.app.close()
