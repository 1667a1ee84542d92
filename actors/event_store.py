"""The event store: an `eventsourcing` application, group-committed without blocking the event
loop (PostgreSQL: from the loop itself, `actors.pg_event_writes`; SQLite: on a thread,
`actors.sqlite_event_writes`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Mapper, OperationalError, PersistenceError, Transcoder
from eventsourcing.postgres import PostgresApplicationRecorder

from actors import metrics
from actors.event_transcoder import EventTranscoder
from actors.payload_keys import PayloadKeys
from actors.pg_event_writes import PostgresEventWrites, connection_kwargs
from actors.settings import Settings
from actors.shredding_mapper import ShreddingMapper
from actors.sqlite_event_writes import SqliteEventWrites

log = logging.getLogger(__name__)
T = TypeVar("T")
CREATE_ATTEMPTS = 5  # under the lock
TABLE_LOCK_KEY = 0x43425F7462  # "CB_tb": the advisory lock of the store's table creation
A = TypeVar("A", bound=Aggregate)


class EventStore(Application[UUID]):
    """Tenants, agents and executions; persistence chosen by environment, not code."""

    name = "CircuitBreaker"

    def construct_transcoder(self) -> Transcoder:
        transcoder = EventTranscoder()  # a client's lookalike of a typed value kept apart
        self.register_transcodings(transcoder)
        return transcoder

    def construct_mapper(self) -> Mapper[UUID]:
        return self.factory.mapper(
            transcoder=self.construct_transcoder(), mapper_class=ShreddingMapper
        )

    @classmethod
    def opened(cls, env: dict[str, str]) -> EventStore:
        """The store, its tables created if missing. Actors starting at once on a new
        PostgreSQL database race to create them, and `CREATE TABLE IF NOT EXISTS` fails in the
        losers (a duplicate type or table, a tuple concurrently updated); a loser tries again
        holding a lock, so it races only first tries of others still starting."""
        try:
            return cls(env=env)
        except PersistenceError:
            if env.get("PERSISTENCE_MODULE") != "eventsourcing.postgres":
                raise
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            with _table_creation_lock(env):
                try:
                    return cls(env=env)
                except PersistenceError:
                    if attempt == CREATE_ATTEMPTS:
                        raise
            time.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    def use_payload_keys(self, keys: PayloadKeys) -> None:
        """Seal and open execution payloads under their payload keys from now on."""
        assert isinstance(self.mapper, ShreddingMapper)
        self.mapper.keys = keys


@contextmanager
def _table_creation_lock(env: dict[str, str]) -> Iterator[None]:
    """A PostgreSQL session lock for creating the store's tables, held by one process at once
    (a database that cannot be reached raises the store's `OperationalError`, as opening it)."""
    import psycopg

    try:
        conn = psycopg.connect(**connection_kwargs(env))
        conn.execute("SELECT pg_advisory_lock(%s)", (TABLE_LOCK_KEY,))
    except psycopg.Error as error:
        raise OperationalError(str(error)) from error
    with conn:
        yield  # the lock ends with the session


def _close_idle_reads(pool: Any, idle_s: float) -> None:
    """The read pool closes a connection left unused for `idle_s` (psycopg_pool's default:
    10 minutes): an actor's reads must not hold one of `max_connections` beside its write
    connection. The pool is open already (the store's tables were made on it), and its
    shrinking was scheduled with the default, so it is scheduled again with `idle_s`."""
    pool.max_idle = idle_s
    try:
        from psycopg_pool.pool import ShrinkPool

        pool.schedule_task(ShrinkPool(pool), idle_s)
    except (ImportError, AttributeError):  # another psycopg_pool: `idle_s` after 10 minutes
        log.warning("the event store's read pool keeps idle connections for 10 minutes")


class AsyncEventStore:
    """The store for an actor's event loop: reads on a small thread pool, writes queued.

    Saves that arrive while a write is in flight are committed together in the next single
    transaction (group commit): one fsync or table lock for many executions under load. On
    PostgreSQL a write goes from the event loop itself (`PostgresEventWrites`); on SQLite
    too while no other writer holds the database and the disk flushes fast, else on the pool
    (`SqliteEventWrites`). Either way the events are the recorder's rows, written without
    `Application.save`.

    A save made with `synced=False` is crash-safe when it resolves: committed, so it outlives
    the death of any process, but not yet flushed to the disk, so a power cut may still take
    it. The next synced commit flushes it with its own (the log is sequential), so whatever a
    client is told after a synced save holds both. A batch of such saves alone commits without
    waiting for the disk: on SQLite with `synchronous=NORMAL`, on PostgreSQL with
    `synchronous_commit` off for its transaction.
    """

    def __init__(self, settings: Settings, threads: int = 4) -> None:
        env = settings.store_env()
        self.app = EventStore.opened(env)
        self.payload_keys = PayloadKeys(settings)
        self.app.use_payload_keys(self.payload_keys)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
        recorder = self.app.recorder
        self._writes = None
        if isinstance(recorder, PostgresApplicationRecorder):
            self._writes = PostgresEventWrites(recorder, env)
            _close_idle_reads(recorder.datastore.pool, settings.store_read_idle_s)
        self._sqlite_writes = (
            SqliteEventWrites(recorder) if SqliteEventWrites.usable(recorder) else None
        )
        self._queue: list[tuple[list[Any], asyncio.Future[None], bool]] = []
        self._writer: asyncio.Task[None] | None = None

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def owned(self, aggregate_id: str, kind: type[A], tenant_id: str) -> A | None:
        """The aggregate of that id if it is a `kind` of `tenant_id`'s, else None (not an
        id, not stored, another kind, another tenant's: not found, whichever it is)."""
        try:
            found = await self.run(self.app.repository.get, UUID(aggregate_id))
        except Exception:
            return None
        if not isinstance(found, kind) or getattr(found, "tenant_id", None) != tenant_id:
            return None
        return found

    def save(self, *aggregates: Aggregate) -> asyncio.Future[None]:
        """Queue the aggregates' pending events; the future resolves once they are committed
        and flushed to the disk.

        Queued at the call, not at the first await, so saves commit in the order made.
        """
        return self.save_events([e for a in aggregates for e in a.collect_events()])

    def save_events(self, events: list[Any], synced: bool = True) -> asyncio.Future[None]:
        """Queue already collected events (say, ones whose first save failed); with
        `synced=False` the future resolves once they are crash-safe (see the class)."""
        done = asyncio.get_running_loop().create_future()
        if not events:
            done.set_result(None)
            return done
        self._queue.append((events, done, synced))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._drain())
        return done

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            pending = [e for events, _, _ in batch for e in events]
            synced = any(s for _, _, s in batch)
            started = time.perf_counter()
            try:
                await self._commit(pending, synced)
                metrics.store_written(time.perf_counter() - started, len(pending))
            except Exception:
                # one bad save must not sink the others: commit each on its own
                for events, done, one_synced in batch:
                    try:
                        await self._commit(events, one_synced)
                    except Exception as exc:
                        _settle(done, exc)
                    else:
                        _settle(done, None)
                continue
            for _, done, _ in batch:
                _settle(done, None)

    async def _commit(self, events: list[Any], synced: bool) -> None:
        mapper = self.app.mapper
        assert isinstance(mapper, ShreddingMapper)

        def stored() -> list[Any]:
            return [mapper.to_stored_event(e) for e in events]

        # sealing may read a payload key from the database: then off the loop
        on_loop = not mapper.seals(events)
        if self._writes is not None:
            await self._writes.insert(stored() if on_loop else await self.run(stored), synced)
        elif self._sqlite_writes is not None:
            writes = self._sqlite_writes
            if not on_loop:
                await self.run(lambda: writes.insert(stored(), synced))
                return
            rows = stored()
            if not writes.insert_now(rows, synced):  # a lock to wait for, a checkpoint due,
                await self.run(writes.insert, rows, synced)  # or a slow disk's flush
        else:
            await self.run(self.app.save, *events)

    def close(self) -> None:
        if self._writes is not None:
            self._writes.close()
        self._pool.shutdown(wait=False)
        if self._sqlite_writes is not None:
            self._sqlite_writes.close()
        self.app.close()
        self.payload_keys.close()


def _settle(done: asyncio.Future[None], error: BaseException | None) -> None:
    if done.done():  # the waiting caller was cancelled; the events are committed regardless
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
