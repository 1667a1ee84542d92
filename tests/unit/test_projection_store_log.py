"""A fold never holds an event its SQLite store could still lose: the store's write-ahead log
is flushed to the disk before the fold that read from it commits (`runner.flush_store_log`;
some store commits are not flushed when made, `AsyncEventStore` with `synced=False`)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors.event_store import AsyncEventStore
from actors.settings import Settings
from projections import runner
from projections.db import ReadModelDB
from tests.support.store import new_execution


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    opened = AsyncEventStore(Settings(data_dir=str(tmp_path / "store")))
    yield opened
    opened.close()


async def test_a_fold_flushes_the_stores_log_before_it_commits(
    store: AsyncEventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "sqlite:///" + str(tmp_path / "readmodels.sqlite")
    db, watcher = ReadModelDB(url), ReadModelDB(url)
    runner.create_tables(db)
    execution = new_execution(f"t-{uuid.uuid4().hex[:8]}")
    await store.save_events(execution.collect_events(), synced=False)  # committed, unflushed
    flushed: list[tuple[str, int]] = []  # the file, and the position the read models held
    fsync = os.fsync

    def noting(fd: int) -> None:
        flushed.append((os.readlink(f"/proc/self/fd/{fd}"), runner.position(watcher)))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", noting)
    assert runner.catch_up(store.app, db) > 0
    wal = store.app.recorder.datastore.pool.db_name + "-wal"
    assert (wal, 0) in flushed  # before the fold's commit moved the position on
    assert runner.position(watcher) > 0
    flushed.clear()
    assert runner.catch_up(store.app, db) == 0
    assert flushed == []  # nothing read, nothing to flush
    db.close()
    watcher.close()
