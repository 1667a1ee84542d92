"""Event writes from the event loop on a real PostgreSQL (`actors.pg_event_writes`): a cut or
idle connection is opened again; sealed payloads stay sealed; any bytes and topics read back
exactly. What both writers promise is in `test_event_writes.py`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import OperationalError, StoredEvent

from actors import pg_event_writes
from actors.event_store import AsyncEventStore
from actors.pg_event_writes import PostgresEventWrites
from actors.settings import Settings
from domain import shredding
from tests.support.store import new_execution


@pytest.fixture
async def store(database: str, tmp_path: Path) -> AsyncIterator[AsyncEventStore]:
    opened = AsyncEventStore(Settings(database_url=database, data_dir=str(tmp_path)))
    yield opened
    opened.close()


def _writes(store: AsyncEventStore) -> PostgresEventWrites:
    assert isinstance(store._writes, PostgresEventWrites)
    return store._writes


def _backend_alive(url: str, pid: int) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
        return found.fetchone() is not None


async def test_a_cut_connection_is_opened_again_for_the_next_write(
    store: AsyncEventStore, database: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await store.save(new_execution(tenant))
    conn = _writes(store)._conn
    assert conn is not None
    pid = conn.info.backend_pid
    with psycopg.connect(database, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    later = new_execution(tenant)
    await store.save(later)
    assert (await store.run(store.app.repository.get, later.id)).tenant_id == tenant
    assert _writes(store)._conn is not None and _writes(store)._conn.info.backend_pid != pid


async def test_an_idle_connection_is_closed_and_opened_on_the_next_write(
    store: AsyncEventStore, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_event_writes, "IDLE_CLOSE_S", 0.3)
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await store.save(new_execution(tenant))
    conn = _writes(store)._conn
    assert conn is not None
    pid = conn.info.backend_pid
    for _ in range(50):
        if not _backend_alive(database, pid):
            break
        await asyncio.sleep(0.1)
    assert not _backend_alive(database, pid)
    later = new_execution(tenant)
    await store.save(later)
    assert (await store.run(store.app.repository.get, later.id)).tenant_id == tenant


async def test_a_payload_sealed_on_the_way_reads_back_whole(
    store: AsyncEventStore, database: str
) -> None:
    tenant, canary = f"t-{uuid.uuid4().hex[:8]}", f"CANARY-{uuid.uuid4().hex}"
    ref = shredding.subject_ref(tenant, "ada@example.com")
    kid = await store.run(store.payload_keys.kid_for, tenant, ref, shredding.bucket(0))
    execution = new_execution(tenant, f"tell me {canary}", subject_ref=ref, payload_kid=kid)
    await store.save(execution)
    found = await store.run(store.app.repository.get, execution.id)
    assert found.request["prompt"] == f"tell me {canary}"
    with psycopg.connect(database) as conn:
        rows = conn.execute(
            "SELECT state FROM circuitbreaker_events WHERE originator_id = %s", (execution.id,)
        ).fetchall()
    assert rows and not any(canary.encode() in bytes(r[0]) for r in rows)


async def test_an_unreachable_database_raises_the_stores_error(
    store: AsyncEventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_event_writes, "WAIT_S", 0.01)
    env = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": "1", "POSTGRES_DBNAME": "none",
           "POSTGRES_USER": "postgres", "POSTGRES_CONNECT_TIMEOUT": "2"}  # fmt: skip
    writes = PostgresEventWrites(store.app.recorder, env)  # type: ignore[arg-type]
    events = new_execution("t-down").collect_events()
    with pytest.raises(OperationalError):
        await writes.insert([store.app.mapper.to_stored_event(e) for e in events])


async def test_any_bytes_and_quoted_topics_read_back_exactly_and_listeners_hear_of_it(
    store: AsyncEventStore, database: str
) -> None:
    """The rows go as literals: every byte value of a state, and quotes and backslashes in a
    topic, come back as written, even where the database's default is the old escape-string
    syntax; each write notifies the recorder's channel, as the library's own does."""
    with psycopg.connect(database, autocommit=True) as admin:
        name = admin.info.dbname
        admin.execute(f'ALTER DATABASE "{name}" SET standard_conforming_strings = off')
    oid = uuid.uuid4()
    state = bytes(range(256)) + b"'); DROP TABLE x; --\\\\"
    topics = ["it's:a\\topic", "plain:Topic", "\\x00'':more"]
    batch = [
        StoredEvent(originator_id=oid, originator_version=v, topic=t, state=state[v:])
        for v, t in enumerate(topics, start=1)
    ]
    with psycopg.connect(database, autocommit=True) as listener:
        channel = store.app.recorder.channel_name
        listener.execute(f'LISTEN "{channel}"')
        await _writes(store).insert(batch)
        heard = [n.channel for n in listener.notifies(timeout=5.0, stop_after=1)]
    assert heard == [channel]
    read = await store.run(store.app.recorder.select_events, oid)
    assert [(e.originator_version, e.topic, bytes(e.state)) for e in read] == [
        (e.originator_version, e.topic, e.state) for e in batch
    ]


async def test_an_unsynced_write_commits_with_synchronous_commit_off_for_itself_only(
    store: AsyncEventStore, database: str
) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    await store.save(new_execution(tenant))  # the table exists; the writer's connection too
    recorder = store.app.recorder
    table = f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'
    with psycopg.connect(database, autocommit=True) as admin:  # each insert says its setting
        admin.execute("CREATE TABLE seen (id text, setting text)")
        admin.execute(
            "CREATE FUNCTION note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO seen VALUES (NEW.originator_id::text, "
            "current_setting('synchronous_commit')); RETURN NEW; END $$"
        )
        admin.execute(f"CREATE TRIGGER noted BEFORE INSERT ON {table} "
                      "FOR EACH ROW EXECUTE FUNCTION note()")  # fmt: skip
    executions = [new_execution(tenant) for _ in range(3)]
    for execution, synced in zip(executions, (False, True, False), strict=True):
        await store.save_events(execution.collect_events(), synced=synced)
    with psycopg.connect(database, autocommit=True) as admin:
        seen = admin.execute("SELECT id, setting FROM seen").fetchall()
        server_default = admin.execute("SHOW synchronous_commit").fetchone()
    assert server_default == ("on",)
    by_execution = [{s for i, s in seen if i == str(e.id)} for e in executions]
    assert by_execution == [{"off"}, {"on"}, {"off"}]  # SET LOCAL: the next one is synced
    stored = await store.run(recorder.select_events, executions[0].id)
    assert stored and stored[0].originator_id == executions[0].id
