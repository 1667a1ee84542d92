"""Actors starting at once on a new PostgreSQL database all open the event store: the one that
loses the race to create its tables finds them there on its next try. An actor's read
connection does not outlive its reads for long."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from actors.event_store import AsyncEventStore, EventStore
from actors.settings import Settings
from domain.tenant import Tenant

OPENERS = 8


def test_stores_opened_at_once_on_a_new_database_all_open(database: str, tmp_path: Path) -> None:
    env = Settings(database_url=database, data_dir=str(tmp_path)).store_env()
    ready = threading.Barrier(OPENERS)

    def open_store(_: int) -> str:
        ready.wait()
        store = EventStore.opened(env)
        try:
            return type(store.recorder).__name__
        finally:
            store.close()

    with ThreadPoolExecutor(OPENERS) as pool:
        opened = list(pool.map(open_store, range(OPENERS)))
    assert opened == ["PostgresApplicationRecorder"] * OPENERS


async def test_an_actors_read_connection_is_closed_soon_after_its_last_read(
    database: str, tmp_path: Path
) -> None:
    """A tenant actor reads at its start and seldom after; its writes have their own
    connection. An idle read connection goes after `store_read_idle_s` (not psycopg_pool's
    10 minutes), so 64 tenant actors fit PostgreSQL's 100 connections."""
    settings = Settings(database_url=database, data_dir=str(tmp_path), store_read_idle_s=0.2)
    store = AsyncEventStore(settings)
    pool = store.app.recorder.datastore.pool  # type: ignore[attr-defined]
    try:
        assert await store.owned(str(uuid.uuid4()), Tenant, "t") is None  # a read: opens one
        assert pool.get_stats()["pool_size"] == 1
        deadline = time.monotonic() + 5
        while pool.get_stats()["pool_size"] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert pool.get_stats()["pool_size"] == 0
        assert await store.owned(str(uuid.uuid4()), Tenant, "t") is None  # opened again
    finally:
        store.close()
