"""A small synchronous SQL handle over SQLite or PostgreSQL for the read models."""

from __future__ import annotations

import contextlib
import functools
import math
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
        if conn.info.parameter_status("standard_conforming_strings") != "on":
            conn.execute("SET standard_conforming_strings = on")  # for `literal`'s strings
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
    def transaction(self, buffered: bool = False) -> Iterator[Cursor]:
        """A write transaction: all statements commit together or not at all.

        `buffered` (PostgreSQL): writes wait, and go with the next SELECT or the commit as one
        query (`_Buffered`); a write's error then surfaces at that SELECT or the commit, and
        still rolls the whole transaction back."""
        with self._connection() as conn:
            if self.is_postgres and buffered:
                with conn.cursor() as cur:
                    buffer = _Buffered(cur)
                    try:
                        yield buffer
                        buffer.commit()
                    except BaseException:
                        buffer.roll_back()
                        raise
            elif self.is_postgres:
                with conn.transaction(), conn.cursor() as cur:
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
        self.rows: dict[Any, dict[str, Any]] = {}  # rows its handlers wrote, as they left them

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.cur.execute(sql, params)


class _Translating:
    def __init__(self, target: Any, translate: Any) -> None:
        self._target = target
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._target.execute(self._translate(sql), tuple(params))


class _Buffered:
    """A PostgreSQL transaction whose statements carry their values as literals: writes wait,
    and go with the next SELECT (whose rows it returns) or the commit as one simple-protocol
    query. A fold of many writes costs two round trips, not one exchange per statement:
    psycopg's pipeline cost the projection ~1 ms of CPU per execution here (bench/README.md,
    2026-12-06). The connection is in autocommit mode; the transaction is our BEGIN/COMMIT."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur
        self._encoding = cur.connection.info.encoding
        self._waiting = ["BEGIN"]
        self._began = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._waiting.append(rendered(sql, params))
        if sql.lstrip()[:6].upper() != "SELECT":
            return _NO_ROWS
        self._send()
        return self._cur

    def _send(self) -> None:
        query = ";".join(self._waiting).encode(self._encoding)
        self._waiting.clear()
        self._began = True
        self._cur.execute(query)
        while self._cur.nextset():  # the last statement's rows
            pass

    def commit(self) -> None:
        if self._began or len(self._waiting) > 1:
            self._waiting.append("COMMIT")
            self._send()

    def roll_back(self) -> None:
        """End the transaction, if it began, without keeping any of it."""
        self._waiting.clear()
        conn = self._cur.connection
        if self._began and not conn.closed:
            with contextlib.suppress(Exception):  # a lost connection ends it just as well
                self._cur.execute(b"ROLLBACK")


class _NoRows:
    def fetchone(self) -> Any:
        raise TypeError("a buffered write has no rows (only a SELECT is sent at once)")

    fetchall = fetchone


_NO_ROWS = _NoRows()


@functools.lru_cache(maxsize=1024)
def _split(sql: str) -> tuple[str, ...]:
    return tuple(sql.split("?"))


def rendered(sql: str, params: Sequence[Any]) -> str:
    """`sql` with each `?` replaced by its parameter as a literal (`literal`). The statements
    are our own, where `?` appears only as a placeholder."""
    parts = _split(sql)
    if len(parts) != len(params) + 1:
        raise ValueError(f"{len(parts) - 1} placeholders, {len(params)} parameters")
    out = [parts[0]]
    for value, part in zip(params, parts[1:], strict=True):
        out.append(literal(value))
        out.append(part)
    return "".join(out)


def quoted(text: str) -> str:
    """A PostgreSQL string literal where `standard_conforming_strings` is on (only quotes are
    doubled). A NUL is refused, as PostgreSQL's text refuses it."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot contain NUL (0x00) characters")
    return "'" + text.replace("'", "''") + "'"


_SPECIAL_FLOATS = {math.inf: "'Infinity'::float8", -math.inf: "'-Infinity'::float8"}


def literal(value: Any) -> str:
    """A read-model value as a PostgreSQL literal: strings untyped (the column's type applies,
    as with psycopg's own parameters), numbers as numbers, booleans, NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, str):
        return quoted(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if math.isfinite(value):
            return repr(value)
        return _SPECIAL_FLOATS.get(value, "'NaN'::float8")
    raise TypeError(f"no literal for {type(value).__name__}")
