"""Event writes to SQLite without `Application.save` (`actors.sqlite_event_writes`): what
they commit reads back through the library in commit order; a conflict writes none of its
batch and raises the store's error; a database another process is writing to is waited for;
an in-memory database keeps the library's path; the driver's errors become the store's
(`actors.store_errors`)."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing import persistence
from eventsourcing.persistence import IntegrityError

from actors.event_store import AsyncEventStore, EventStore
from actors.settings import Settings
from actors.sqlite_event_writes import SqliteEventWrites
from actors.store_errors import as_store_error
from domain.execution import Execution
from domain.results import Outcome


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    opened = AsyncEventStore(Settings(data_dir=str(tmp_path)))
    yield opened
    opened.close()


def _execution(tenant_id: str, prompt: str = "hello") -> Execution:
    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant_id, agent_id="a", agent_version=1,
        request={"prompt": prompt}, model_requested="gpt-4.1-mini", stream=False,
    )  # fmt: skip
    execution.resolve_model("gpt-4.1-mini", "openai", {})
    return execution


def _writes(store: AsyncEventStore) -> SqliteEventWrites:
    assert isinstance(store._sqlite_writes, SqliteEventWrites)
    return store._sqlite_writes


async def test_saves_commit_without_the_application_and_read_back_in_their_order(
    store: AsyncEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_: object) -> None:
        raise AssertionError("Application.save was called")

    monkeypatch.setattr(store.app, "save", refused)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    executions = [_execution(tenant, f"prompt {n}") for n in range(12)]
    for execution in executions:
        execution.complete(Outcome.model_validate({"answer": {"content": f"done {execution.id}"}}))
    before = store.app.recorder.max_notification_id() or 0
    await asyncio.gather(*(store.save(e) for e in executions))  # group-committed
    for execution in executions:
        found = await store.run(store.app.repository.get, execution.id)
        assert found.status == "completed"
        assert found.outcome.answer.content == f"done {execution.id}"
    notes = store.app.recorder.select_notifications(before + 1, 100)
    order = [n.originator_id for n in notes if n.originator_version == 1]
    assert order == [e.id for e in executions]  # the order the saves were made


async def test_a_version_conflict_writes_none_of_its_batch(store: AsyncEventStore) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = _execution(tenant)
    await store.save(first)
    stored = await store.run(store.app.recorder.select_events, first.id)
    other = _execution(tenant)
    batch = [store.app.mapper.to_stored_event(e) for e in other.collect_events()] + [stored[0]]
    with pytest.raises(IntegrityError):
        await store.run(_writes(store).insert, batch)
    assert await store.run(store.app.recorder.select_events, other.id) == []
    await store.run(_writes(store).insert, batch[:-1])  # the connection takes the next write
    assert len(await store.run(store.app.recorder.select_events, other.id)) == len(batch) - 1


async def test_a_write_waits_for_a_lock_another_process_holds(
    store: AsyncEventStore, tmp_path: Path
) -> None:
    path = store.app.recorder.datastore.pool.db_name
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # as another actor's write in flight
    execution = _execution(f"t-{uuid.uuid4().hex[:8]}")
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
