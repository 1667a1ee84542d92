"""Actors starting at once on a new PostgreSQL database all open the event store: the one that
loses the race to create its tables finds them there on its next try."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from actors.event_store import EventStore
from actors.settings import Settings

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
