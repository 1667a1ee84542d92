"""Event writes to SQLite with no `eventsourcing` application between: the recorder's own
table and insert statement, on a connection of this store's own, one IMMEDIATE transaction
per write. `Application.save` and the library's connection pool cost ~0.1 ms of CPU per
write more than this (bench/README.md, 2026-12-06). A synced commit waits on the disk, so
`insert` runs on the store's thread pool, one write at a time; an unsynced one
(`synchronous=NORMAL`: in the write-ahead log, not yet flushed) waits on nothing but another
writer's lock, so `insert_now` makes it on the caller's thread when that lock is free.
Checkpoints (which flush) are left to the synced commits and to the thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteApplicationRecorder

from actors.store_errors import as_store_error


class Busy(Exception):
    """Another writer holds the database (an unwaited commit's BEGIN found it locked)."""


@dataclass(frozen=True)
class Mode:
    """How a commit goes: flushed to the disk or not; waiting for another writer's lock or
    not (then without checkpointing either, which flushes)."""

    synchronous: str
    waits: bool

    def pragmas(self, timeout_s: float) -> str:
        busy_ms = int(timeout_s * 1000) if self.waits else 0
        checkpoint_pages = 1000 if self.waits else 0  # SQLite's default, or none
        return (
            f"PRAGMA synchronous={self.synchronous}; PRAGMA busy_timeout={busy_ms}; "
            f"PRAGMA wal_autocheckpoint={checkpoint_pages};"
        )


FLUSHED = Mode("FULL", waits=True)
UNFLUSHED = Mode("NORMAL", waits=True)
AT_ONCE = Mode("NORMAL", waits=False)


def _rows(stored: Sequence[StoredEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
            e.originator_version,
            e.topic,
            e.state,
        )
        for e in stored
    ]


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
        self._mode: Mode | None = None  # the connection's pragmas as last set

    @staticmethod
    def usable(recorder: Any) -> bool:
        """Whether `recorder` is a SQLite one of a file database."""
        return isinstance(recorder, SQLiteApplicationRecorder) and not (
            recorder.datastore.pool.is_sqlite_memory_mode
        )

    def insert(self, stored: Sequence[StoredEvent], synced: bool = True) -> None:
        """Commit `stored` in one transaction, flushed to the disk unless `synced` is False,
        or raise the store's `PersistenceError`."""
        with self._lock:
            self._commit(_rows(stored), FLUSHED if synced else UNFLUSHED)

    def insert_now(self, stored: Sequence[StoredEvent]) -> bool:
        """Commit `stored` unsynced without waiting: False, having written nothing, when
        another writer (a thread here, another process) holds the database; else as
        `insert`."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            self._commit(_rows(stored), AT_ONCE)
        except Busy:
            return False
        finally:
            self._lock.release()
        return True

    def _commit(self, rows: list[tuple[Any, ...]], mode: Mode) -> None:
        try:
            conn = self._connection()
            if mode != self._mode:
                conn.executescript(mode.pragmas(self._timeout))
                self._mode = mode
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if mode.waits or exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                raise Busy from exc
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
            conn, self._conn, self._mode = self._conn, None, None
        if conn is not None:
            conn.close()
