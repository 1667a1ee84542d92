"""What both event writers promise (`actors.pg_event_writes` on a real PostgreSQL,
`actors.sqlite_event_writes` on SQLite): saves commit without `Application.save` and read
back through the library in the order made; a version conflict writes none of its batch,
raises the store's `IntegrityError`, and the writer takes the next write."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from actors.event_store import AsyncEventStore
from actors.settings import Settings
from domain.results import Outcome
from tests.support.store import new_execution


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    url = request.getfixturevalue("database") if request.param == "postgres" else None
    opened = AsyncEventStore(Settings(database_url=url, data_dir=str(tmp_path)))
    assert (opened._writes if url else opened._sqlite_writes) is not None
    yield opened
    opened.close()


async def _insert(store: AsyncEventStore, batch: Sequence[StoredEvent]) -> None:
    if store._writes is not None:
        await store._writes.insert(batch)  # PostgreSQL: from the loop
    else:
        assert store._sqlite_writes is not None
        await store.run(store._sqlite_writes.insert, batch)  # SQLite: on the pool


async def test_saves_commit_without_the_application_and_read_back_in_their_order(
    store: AsyncEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_: object) -> None:
        raise AssertionError("Application.save was called")

    monkeypatch.setattr(store.app, "save", refused)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    executions = [new_execution(tenant, f"prompt {n}") for n in range(12)]
    for execution in executions:
        execution.complete(Outcome.model_validate({"answer": {"content": f"done {execution.id}"}}))
    before = store.app.recorder.max_notification_id() or 0
    await asyncio.gather(*(store.save(e) for e in executions))  # group-committed
    if store._writes is not None:
        assert store._pool._threads == set()  # type: ignore[attr-defined]  # no store thread
    for execution in executions:
        found = await store.run(store.app.repository.get, execution.id)
        assert found.status == "completed"
        assert found.outcome.answer.content == f"done {execution.id}"
    notes = store.app.recorder.select_notifications(before + 1, 100)
    order = [n.originator_id for n in notes if n.originator_version == 1]
    assert order == [e.id for e in executions]  # the order the saves were made
    assert [n.id for n in notes] == sorted(n.id for n in notes)


async def test_a_version_conflict_writes_none_of_its_batch(store: AsyncEventStore) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = new_execution(tenant)
    await store.save(first)
    stored = await store.run(store.app.recorder.select_events, first.id)
    other = new_execution(tenant)
    batch = [store.app.mapper.to_stored_event(e) for e in other.collect_events()] + [stored[0]]
    with pytest.raises(IntegrityError):
        await _insert(store, batch)
    assert await store.run(store.app.recorder.select_events, other.id) == []
    await _insert(store, batch[:-1])  # the same connection takes the next write
    assert len(await store.run(store.app.recorder.select_events, other.id)) == len(batch) - 1
