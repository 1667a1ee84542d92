"""Event writes to PostgreSQL from the actor's event loop, with no store thread between.

The rows, table lock, notification and insert are the `eventsourcing` recorder's own
statements (its table format, its commit order for readers of the notification log), sent on
one psycopg async connection in one pipelined round trip: BEGIN, the lock, NOTIFY, the insert
and COMMIT. A write thus hands no GIL to a thread and back, and holds the table lock for the
server's work and the commit only, not for a round trip in between.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier
from psycopg.types.composite import register_composite

ATTEMPTS = 10  # a lost connection or a rolled-back transaction is tried again, as the library
WAIT_S = 0.2  # does: 10 times, 0.2 s apart
IDLE_CLOSE_S = 60.0  # the connection is closed after this long unused

# psycopg's errors as the event store's callers know them (`PersistenceError` and its kinds)
_KINDS: tuple[tuple[type[psycopg.Error], type[persistence.PersistenceError]], ...] = (
    (psycopg.IntegrityError, persistence.IntegrityError),
    (psycopg.OperationalError, persistence.OperationalError),
    (psycopg.InterfaceError, persistence.InterfaceError),
    (psycopg.DataError, persistence.DataError),
    (psycopg.ProgrammingError, persistence.ProgrammingError),
    (psycopg.InternalError, persistence.InternalError),
    (psycopg.NotSupportedError, persistence.NotSupportedError),
    (psycopg.DatabaseError, persistence.DatabaseError),
)


def connection_kwargs(env: dict[str, str]) -> dict[str, Any]:
    """`psycopg.connect`'s arguments for the store's database, as the store's settings name it
    (`Settings.store_env`), in autocommit mode."""
    return {
        "host": env["POSTGRES_HOST"],
        "port": env["POSTGRES_PORT"],
        "dbname": env["POSTGRES_DBNAME"],
        "user": env["POSTGRES_USER"],
        "password": env.get("POSTGRES_PASSWORD", ""),
        "connect_timeout": int(env.get("POSTGRES_CONNECT_TIMEOUT", "10")),
        "autocommit": True,
    }


class PostgresEventWrites:
    """Inserts stored events into the recorder's table on a connection of its own, opened on
    the first write and closed after `IDLE_CLOSE_S` without one. Use from one event loop."""

    def __init__(self, recorder: PostgresApplicationRecorder, env: dict[str, str]) -> None:
        self.recorder = recorder
        self._connect_kwargs = connection_kwargs(env)  # autocommit: the transaction is explicit
        self._notify = SQL("NOTIFY {0}").format(Identifier(recorder.channel_name))
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._used = 0.0
        self._writing = False
        self._idle_check: asyncio.TimerHandle | None = None

    async def insert(self, stored: Sequence[StoredEvent]) -> None:
        """Commit `stored` in one transaction, or raise the store's `PersistenceError`."""
        rows = [
            self.recorder.construct_pg_stored_event(
                e.originator_id, e.originator_version, e.topic, e.state
            )
            for e in stored
        ]
        self._writing = True
        try:
            await self._insert(rows)
        finally:
            self._writing = False
            self._used = time.monotonic()

    async def _insert(self, rows: list[Any]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                await self._write(await self._connection(), rows)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.close()  # a new connection for the next try, whatever this one's state
                if attempt == ATTEMPTS:
                    raise _as_store_error(exc) from exc
                await asyncio.sleep(WAIT_S)
            except psycopg.Error as exc:
                if self._conn is not None and self._conn.broken:
                    self.close()
                raise _as_store_error(exc) from exc

    async def _write(self, conn: psycopg.AsyncConnection[Any], rows: list[Any]) -> None:
        async with conn.pipeline(), conn.transaction():
            for statement in self.recorder.lock_table_statements:
                await conn.execute(statement, prepare=True)
            await conn.execute(self._notify, prepare=True)
            await conn.execute(self.recorder.insert_events_statement, (rows,), prepare=True)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await psycopg.AsyncConnection.connect(**self._connect_kwargs)
        datastore = self.recorder.datastore
        name = self.recorder.stored_event_type_name
        info = datastore.psycopg_type_adapters[name]
        register_composite(info, conn, factory=datastore.psycopg_python_types[name])
        self._conn = conn
        self._idle_check = asyncio.get_running_loop().call_later(IDLE_CLOSE_S, self._check_idle)
        return conn

    def _check_idle(self) -> None:
        idle = 0.0 if self._writing else time.monotonic() - self._used
        if idle >= IDLE_CLOSE_S:
            self.close()
        elif self._conn is not None:
            loop = asyncio.get_running_loop()
            self._idle_check = loop.call_later(IDLE_CLOSE_S - idle, self._check_idle)

    def close(self) -> None:
        """Close the connection now (libpq's own close: callable without awaiting)."""
        if self._idle_check is not None:
            self._idle_check.cancel()
            self._idle_check = None
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.pgconn.finish()


def _as_store_error(exc: psycopg.Error) -> persistence.PersistenceError:
    for theirs, ours in _KINDS:
        if isinstance(exc, theirs):
            return ours(str(exc))
    return persistence.PersistenceError(str(exc))
