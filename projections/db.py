"""A small synchronous SQL handle over SQLite or PostgreSQL for the read models."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...


# column types that differ between the backends, named in DDL as {TIMESTAMP} and {DATE}
TYPES = {
    True: {"TIMESTAMP": "TIMESTAMPTZ", "DATE": "DATE"},
    False: {"TIMESTAMP": "TEXT", "DATE": "TEXT"},  # ISO 8601 text, which sorts as time does
}


class ReadModelDB:
    """One connection guarded by a lock; SQL is written with `?` placeholders.

    With `schema`, PostgreSQL keeps (and looks up) the tables in that schema, made if
    missing; SQLite has no schemas and ignores it. A PostgreSQL connection that was lost (the
    server restarted) is opened again by the next statement; while the server is unreachable
    each statement raises the store's `OperationalError` (answered 503, `actors.replies`).
    """

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url = url
        self.schema = schema
        self._lock = threading.Lock()
        self.is_postgres = url.startswith("postgres")
        if self.is_postgres:
            self._conn: Any = self._connect()
        else:
            path = url.removeprefix("sqlite:///")
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            # no fsync per commit: a fold lost to a power cut (never to a crash) is folded
            # again from the store, its tracked position being in the same transaction
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=30000")

    def _connect(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        conn = psycopg.connect(self.url, row_factory=dict_row, autocommit=True)
        if self.schema is not None:
            try:
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            except psycopg.errors.UniqueViolation:
                pass  # made at the same moment by another process
            conn.execute(f"SET search_path TO {self.schema}")
        return conn

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        """The open connection, under the lock (PostgreSQL: reopened if it was lost)."""
        with self._lock:
            if not self.is_postgres:
                yield self._conn
                return
            import psycopg
            from eventsourcing.persistence import OperationalError

            try:
                if self._conn.closed:
                    self._conn = self._connect()
                yield self._conn
            except psycopg.OperationalError as exc:
                raise OperationalError(f"read models unavailable: {type(exc).__name__}") from exc

    def dialect(self, statements: Sequence[str]) -> list[str]:
        """DDL with this backend's column types in place of {TIMESTAMP} and {DATE}."""
        types = TYPES[self.is_postgres]
        return [s.replace("{TIMESTAMP}", types["TIMESTAMP"]).replace("{DATE}", types["DATE"])
                for s in statements]  # fmt: skip

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.is_postgres else sql

    @contextmanager
    def transaction(self, pipelined: bool = False) -> Iterator[Cursor]:
        """A write transaction: all statements commit together or not at all.

        `pipelined` (PostgreSQL): statements are sent without waiting for each one's answer,
        until one's rows are fetched or the commit; an error may then surface at a later
        statement than its own, and still rolls the whole transaction back."""
        with self._connection() as conn:
            if self.is_postgres:
                pipeline = conn.pipeline() if pipelined else contextlib.nullcontext()
                with pipeline, conn.transaction(), conn.cursor() as cur:
                    yield _Translating(cur, self._sql)
            else:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Translating(conn, self._sql)
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        try:
            with self._connection() as conn:
                rows = conn.execute(self._sql(sql), tuple(params)).fetchall()
        except Exception:
            if not (self.is_postgres and self._conn.closed):
                raise
            with self._connection() as conn:  # it was lost before this query: once more
                rows = conn.execute(self._sql(sql), tuple(params)).fetchall()
        return [dict(row) for row in rows]

    def run(self, sql: str) -> None:
        """A statement outside any transaction that returns nothing (VACUUM, a PRAGMA)."""
        with self._connection() as conn:
            conn.execute(sql)

    def columns(self, table: str) -> set[str]:
        """The column names of `table` (a name from our own DDL, never user input)."""
        if self.is_postgres:
            rows = self.query(
                "SELECT column_name AS name FROM information_schema.columns WHERE table_name = ?",
                (table,),
            )
        else:
            rows = self.query(f"PRAGMA table_info({table})")
        return {row["name"] for row in rows}

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Batch:
    """The cursor of one catch-up transaction, with room for what its handlers gather to
    write once at its end (`runner.Projection.flush`)."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.pending: dict[Any, Any] = {}

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.cur.execute(sql, params)


class _Translating:
    def __init__(self, target: Any, translate: Any) -> None:
        self._target = target
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._target.execute(self._translate(sql), tuple(params))
