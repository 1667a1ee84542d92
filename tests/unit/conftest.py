"""Fixtures the in-process unit tests share: a real event store in a temporary directory, a
PostgreSQL database of a test's own, and a platform OpenAI key so the default configuration
has a provider to call."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from actors.event_store import AsyncEventStore
from actors.settings import Settings
from tests.support.cluster import drop_database, postgres_database


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    store = AsyncEventStore(Settings(data_dir=str(tmp_path)))
    yield store
    store.close()


@pytest.fixture
def database() -> Iterator[str]:
    """A new PostgreSQL database of the test's own, dropped after it."""
    url = postgres_database()
    if url is None:
        pytest.skip("PostgreSQL is not reachable (CI=true requires it)")
    yield url
    drop_database(url)


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
