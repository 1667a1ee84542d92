"""Event writes to SQLite with no `eventsourcing` application between: the recorder's own
table and insert statement, on a connection of this store's own, one IMMEDIATE transaction
per write. `Application.save` and the library's connection pool cost ~0.1 ms of CPU per
write more than this (bench/README.md, 2026-12-06). A commit waits on the disk, so `insert`
runs on the store's thread pool, one write at a time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteApplicationRecorder

from actors.store_errors import as_store_error


class SqliteEventWrites:
    """Inserts stored events into the recorder's table (a file database's; an in-memory one
    is private to its connection and keeps the library's path)."""

    def __init__(self, recorder: SQLiteApplicationRecorder) -> None:
        pool = recorder.datastore.pool
        self._db_name = pool.db_name
        self._timeout = pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT
        self._statement = recorder.insert_events_statement
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    @staticmethod
    def usable(recorder: Any) -> bool:
        """Whether `recorder` is a SQLite one of a file database."""
        return isinstance(recorder, SQLiteApplicationRecorder) and not (
            recorder.datastore.pool.is_sqlite_memory_mode
        )

    def insert(self, stored: Sequence[StoredEvent]) -> None:
        """Commit `stored` in one transaction, or raise the store's `PersistenceError`."""
        rows = [
            (
                e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
                e.originator_version,
                e.topic,
                e.state,
            )
            for e in stored
        ]
        with self._lock:
            try:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(self._statement, rows)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise as_store_error(exc) from exc

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:  # the library made the file and its table, in WAL mode
            self._conn = sqlite3.connect(
                self._db_name,
                uri=True,
                check_same_thread=False,  # the pool's threads take turns, under the lock
                isolation_level=None,
                timeout=self._timeout,
            )
        return self._conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
