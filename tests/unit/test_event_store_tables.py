"""Actors starting at once on a new PostgreSQL database all open the event store: the one that
loses the race to create its tables finds them there on its next try."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from tests.support.cluster import drop_database, postgres_database

OPENERS = 8


@pytest.fixture
def database() -> Iterator[str]:
    url = postgres_database()
    if url is None:
        pytest.skip("PostgreSQL is not reachable (CI=true requires it)")
    yield url
    drop_database(url)


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
