"""Event writes to SQLite without `Application.save` (`actors.sqlite_event_writes`): a
database another process is writing to is waited for; an in-memory database keeps the
library's path; the driver's errors become the store's (`actors.store_errors`). What both
writers promise is in `test_event_writes.py`."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing import persistence

from actors.event_store import AsyncEventStore, EventStore
from actors.settings import Settings
from actors.sqlite_event_writes import AT_ONCE_RUN, SLOW_FLUSH_S, SqliteEventWrites
from actors.store_errors import as_store_error
from tests.support.store import new_execution


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    opened = AsyncEventStore(Settings(data_dir=str(tmp_path)))
    yield opened
    opened.close()


def _writes(store: AsyncEventStore) -> SqliteEventWrites:
    assert isinstance(store._sqlite_writes, SqliteEventWrites)
    return store._sqlite_writes


async def test_a_write_waits_for_a_lock_another_process_holds(
    store: AsyncEventStore, tmp_path: Path
) -> None:
    path = store.app.recorder.datastore.pool.db_name
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another actor's write in flight
    execution = new_execution(f"t-{uuid.uuid4().hex[:8]}")
    saving = store.save(execution)
    await asyncio.sleep(0.3)
    assert not saving.done()
    other.execute("COMMIT")
    await asyncio.wait_for(saving, 10)
    assert (await store.run(store.app.repository.get, execution.id)).id == execution.id
    other.close()


def test_an_in_memory_database_keeps_the_librarys_path() -> None:
    app = EventStore(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                          "SQLITE_DBNAME": "file:memdb1?mode=memory&cache=shared"})  # fmt: skip
    assert not SqliteEventWrites.usable(app.recorder)
    app.close()


def test_driver_errors_become_the_stores_of_the_same_kind() -> None:
    cases = [
        (sqlite3.IntegrityError("UNIQUE constraint failed"), persistence.IntegrityError),
        (sqlite3.OperationalError("database is locked"), persistence.OperationalError),
        (psycopg.errors.UniqueViolation("duplicate key"), persistence.IntegrityError),
        (psycopg.errors.LockNotAvailable("lock timeout"), persistence.OperationalError),
        (psycopg.errors.DivisionByZero("x"), persistence.DataError),
        (sqlite3.DatabaseError("file is not a database"), persistence.DatabaseError),
        (RuntimeError("other"), persistence.PersistenceError),
    ]
    for exc, kind in cases:
        error = as_store_error(exc)
        assert type(error) is kind and str(error) == str(exc)


def _pragmas(writes: SqliteEventWrites) -> tuple[int, int]:
    conn = writes._connection()
    (synchronous,) = conn.execute("PRAGMA synchronous").fetchone()
    (checkpoint_pages,) = conn.execute("PRAGMA wal_autocheckpoint").fetchone()
    return synchronous, checkpoint_pages


async def test_writes_commit_from_the_loop_an_unsynced_one_unflushed_a_synced_one_flushed(
    store: AsyncEventStore,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    started = new_execution(tenant)
    await store.save_events(started.collect_events(), synced=False)
    assert store._pool._threads == set()  # type: ignore[attr-defined]  # no store thread
    assert _pragmas(_writes(store)) == (1, 0)  # NORMAL; no checkpoint (it flushes) on the loop
    assert (await store.run(store.app.repository.get, started.id)).id == started.id
    ended = new_execution(tenant)
    await store.save_events(ended.collect_events())
    assert _pragmas(_writes(store)) == (2, 0)  # FULL: this commit flushed the log, both
    assert (await store.run(store.app.repository.get, ended.id)).id == ended.id


async def test_checkpoints_are_made_on_the_thread_between_runs_of_commits_at_once(
    store: AsyncEventStore,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    path = Path(store.app.recorder.datastore.pool.db_name)
    empty = path.stat().st_size
    for _ in range(AT_ONCE_RUN):
        await store.save(new_execution(tenant, prompt="x" * 20_000))  # ~6 pages each
    assert store._pool._threads == set()  # type: ignore[attr-defined]  # all at once
    assert path.stat().st_size == empty  # nothing checkpointed into the database yet
    for _ in range(3 * AT_ONCE_RUN):
        await store.save(new_execution(tenant, prompt="x" * 20_000))
    assert path.stat().st_size > empty + 1_000_000  # the log was copied into the database
    wal = Path(f"{path}-wal").stat().st_size
    assert wal < (1000 + 2 * AT_ONCE_RUN * 8) * 4096  # and the log kept from growing


async def test_an_unsynced_write_waits_for_another_processs_lock_off_the_loop(
    store: AsyncEventStore,
) -> None:
    path = store.app.recorder.datastore.pool.db_name
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another actor's write in flight
    execution = new_execution(f"t-{uuid.uuid4().hex[:8]}")
    saving = store.save_events(execution.collect_events(), synced=False)
    before = time.monotonic()
    await asyncio.sleep(0.3)
    assert time.monotonic() - before < 1.0  # the loop was not held waiting for the lock
    assert not saving.done()
    other.execute("COMMIT")
    await asyncio.wait_for(saving, 10)
    assert (await store.run(store.app.repository.get, execution.id)).id == execution.id
    assert _pragmas(_writes(store))[0] == 1  # committed on the pool, still unflushed
    other.close()


async def test_a_flushed_write_goes_to_the_thread_while_the_disks_flushes_are_slow(
    store: AsyncEventStore,
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    writes = _writes(store)
    writes.flush_s = 5 * SLOW_FLUSH_S  # as after flushes that took 10 ms each
    await store.save(new_execution(tenant))
    assert store._pool._threads  # type: ignore[attr-defined]  # off the loop
    assert _pragmas(writes) == (2, 1000)
    await store.save_events(new_execution(tenant).collect_events(), synced=False)
    assert _pragmas(writes) == (1, 0)  # an unflushed one waits on no disk: still at once
    for _ in range(200):  # this disk's own flushes, timed on the thread, bring the mean down
        await store.save(new_execution(tenant))
        if writes.flush_s < SLOW_FLUSH_S:
            break
    assert writes.flush_s < SLOW_FLUSH_S
    await store.save(new_execution(tenant))
    assert _pragmas(writes) == (2, 0)  # at once again
