"""Event writes to PostgreSQL from the actor's event loop, with no store thread between.

The rows, table lock, notification and insert are the `eventsourcing` recorder's own (its
table format, its lock for the commit order readers of the notification log rely on), sent
on one psycopg async connection as one simple-protocol query: the lock, NOTIFY and a
multi-row INSERT of literal rows, which PostgreSQL runs as one implicit transaction (an
error in any statement rolls all of it back). One round trip and one wait on the socket:
psycopg's pipeline of parameterised statements cost 5x the CPU per write here, on both
ends (bench/README.md, 2026-12-06). An unsynced write turns `synchronous_commit` off for its
transaction: committed when answered, flushed to the disk by the server soon after or with
the next synced commit, whichever comes first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.sql import SQL, Identifier

from actors.store_errors import as_store_error
from projections.db import quoted

ATTEMPTS = 10  # a lost connection or a rolled-back transaction is tried again, as the library
WAIT_S = 0.2  # does: 10 times, 0.2 s apart
IDLE_CLOSE_S = 60.0  # the connection is closed after this long unused
UNSYNCED = b"SET LOCAL synchronous_commit = off; "


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
        self._connect_kwargs = connection_kwargs(env)  # autocommit: one query, one transaction
        datastore = recorder.datastore
        table = SQL("{0}.{1}").format(
            Identifier(datastore.schema), Identifier(recorder.events_table_name)
        )
        self._head = SQL(
            "SET LOCAL lock_timeout = '{0}s'; LOCK TABLE {1} IN EXCLUSIVE MODE; NOTIFY {2}; "
            "INSERT INTO {1} (originator_id, originator_version, topic, state) VALUES "
        ).format(SQL(str(int(datastore.lock_timeout))), table, Identifier(recorder.channel_name))
        self._head_bytes = b""  # rendered by the first connection
        self._id_type = Identifier(datastore.originator_id_type)
        self._id_cast = ""
        self._topics: dict[str, str] = {}  # topic -> its quoted literal
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._used = 0.0
        self._writing = False
        self._idle_check: asyncio.TimerHandle | None = None

    async def insert(self, stored: Sequence[StoredEvent], synced: bool = True) -> None:
        """Commit `stored` in one transaction, flushed to the disk before this returns unless
        `synced` is False, or raise the store's `PersistenceError`."""
        if not stored:
            return
        self._writing = True
        try:
            await self._insert(stored, synced)
        finally:
            self._writing = False
            self._used = time.monotonic()

    async def _insert(self, stored: Sequence[StoredEvent], synced: bool) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                conn = await self._connection()
                query = self._query(stored)
                await conn.execute(query if synced else UNSYNCED + query)
                return
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self.close()  # a new connection for the next try, whatever this one's state
                if attempt == ATTEMPTS:
                    raise as_store_error(exc) from exc
                await asyncio.sleep(WAIT_S)
            except psycopg.Error as exc:
                if self._conn is not None and self._conn.broken:
                    self.close()
                raise as_store_error(exc) from exc

    def _query(self, stored: Sequence[StoredEvent]) -> bytes:
        """The write as one query: the rows as literals (ids and versions as text, topics
        quoted, states as bytea hex; `standard_conforming_strings` is on, see `_connection`)."""
        rows = ",".join(
            f"({quoted(str(e.originator_id))}{self._id_cast},{int(e.originator_version)},"
            f"{self._topic(e.topic)},'\\x{e.state.hex()}'::bytea)"
            for e in stored
        )
        return self._head_bytes + rows.encode()

    def _topic(self, topic: str) -> str:
        literal = self._topics.get(topic)
        if literal is None:
            literal = self._topics[topic] = quoted(topic)
        return literal

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        conn = await psycopg.AsyncConnection.connect(**self._connect_kwargs)
        if conn.info.parameter_status("standard_conforming_strings") != "on":
            await conn.execute("SET standard_conforming_strings = on")  # '\\' stays literal
        self._head_bytes = self._head.as_bytes(conn)
        self._id_cast = "::" + self._id_type.as_string(conn)
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
