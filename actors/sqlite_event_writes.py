"""Event writes to SQLite with no `eventsourcing` application between: the recorder's own
table and insert statement, on a connection of this store's own, one IMMEDIATE transaction
per write. `Application.save` and the library's connection pool cost ~0.1 ms of CPU per
write more than this (bench/README.md, 2026-12-06). `insert` waits for another writer's
lock, so it runs on the store's thread pool, one write at a time; `insert_now` makes a commit
on the caller's thread when that lock is free, flushed (`synchronous=FULL`: one `fdatasync` of
the write-ahead log, 0.1-0.5 ms here) or not (`NORMAL`: in the log, not yet flushed), and
declines otherwise; it declines flushed ones too while the disk's flushes are slow
(`SLOW_FLUSH_S`), which would hold the caller's event loop. Checkpoints copy the log into the
database and flush it: they are left to `insert`, which `insert_now` declines to stand in for
after `AT_ONCE_RUN` commits in a row."""

from __future__ import annotations

import sqlite3
import threading
import time
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
FLUSHED_AT_ONCE = Mode("FULL", waits=False)
AT_ONCE = Mode("NORMAL", waits=False)
AT_ONCE_RUN = 64  # commits made at once before one goes to `insert` (and its checkpoint)
SLOW_FLUSH_S = 0.002  # a flushed commit's mean time above which `insert_now` leaves it be
FLUSH_WEIGHT = 0.1  # of each flushed commit's time in that mean


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
        self._at_once = 0  # commits made at once since the last by `insert`
        self.flush_s = 0.0  # the mean time of a flushed commit's COMMIT (its fsync)

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
            self._at_once = 0

    def insert_now(self, stored: Sequence[StoredEvent], synced: bool = False) -> bool:
        """Commit `stored` without waiting for a lock, as `insert` would: False, having
        written nothing, when another writer (a thread here, another process) holds the
        database, when a checkpoint is due (`AT_ONCE_RUN`), or when `synced` and the disk's
        flushes are slow (`SLOW_FLUSH_S`)."""
        if (
            self._at_once >= AT_ONCE_RUN
            or (synced and self.flush_s > SLOW_FLUSH_S)
            or not self._lock.acquire(blocking=False)
        ):
            return False
        try:
            self._commit(_rows(stored), FLUSHED_AT_ONCE if synced else AT_ONCE)
        except Busy:
            return False
        finally:
            self._lock.release()
        self._at_once += 1
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
            committing = time.perf_counter()
            conn.execute("COMMIT")
            if mode.synchronous == "FULL":
                took = time.perf_counter() - committing
                self.flush_s += FLUSH_WEIGHT * (took - self.flush_s)
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
