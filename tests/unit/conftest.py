"""Fixtures the in-process unit tests share: a real event store in a temporary directory,
and a platform OpenAI key so the default configuration has a provider to call."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.event_store import AsyncEventStore
from actors.settings import Settings


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    store = AsyncEventStore(Settings(data_dir=str(tmp_path)))
    yield store
    store.close()


@pytest.fixture
def openai_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")
