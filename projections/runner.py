"""Folds new events into the read models, recording the position in the same transaction.

Each `Projection` has its own tables and its own tracked position, so it can be rebuilt
alone. The position is read under the transaction's write lock (`FOR UPDATE` on PostgreSQL,
`BEGIN IMMEDIATE` on SQLite), so two folders never apply the same event twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteApplicationRecorder

from domain.execution import Execution
from projections import (
    audit,
    collaborations,
    deprecations,
    directory,
    feedback,
    history,
    metrics,
)
from projections.db import Batch, Cursor, ReadModelDB
from projections.decoded import ResolvedStart, event_of, paired

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking (name TEXT PRIMARY KEY, position BIGINT)"
)
BATCH = 500  # events folded per transaction

Handler = Callable[[Cursor, Any], None]


PAIRED = (Execution.Started, Execution.ModelResolved)  # folded as `ResolvedStart` too


def _handlers(*modules: Any) -> dict[type, list[Handler]]:
    merged: dict[type, list[Handler]] = {}
    for module in modules:
        handled = module.HANDLERS.keys()
        if any(kind in handled for kind in PAIRED) and ResolvedStart not in handled:
            raise TypeError(f"{module.__name__} folds {PAIRED} but not a ResolvedStart")
        for event_type, handler in module.HANDLERS.items():
            merged.setdefault(event_type, []).append(handler)
    return merged


@dataclass(frozen=True)
class Projection:
    """A named set of read models, folded together under one tracked position."""

    name: str
    ddl: tuple[str, ...]
    handlers: dict[type, list[Handler]]
    tables: tuple[str, ...]  # emptied by a rebuild
    columns: tuple[tuple[str, str, str], ...] = field(default=())  # added after first made
    schema: str | None = None  # PostgreSQL schema of its tables (SQLite has none)
    comments: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    flush: Callable[[Batch], None] | None = None  # writes what the batch's handlers gathered
    indexes: tuple[str, ...] = field(default=())  # on `columns`, made once they exist


READ_MODELS = Projection(
    name="read_models",
    ddl=(*history.DDL, *directory.DDL, *audit.DDL, *deprecations.DDL, *feedback.DDL,
         *collaborations.DDL),
    handlers=_handlers(history, directory, audit, deprecations, feedback, collaborations),
    tables=(
        "executions", "tenants", "api_keys", "audit_log", *deprecations.TABLES, *feedback.TABLES,
        *collaborations.TABLES,
    ),
    columns=(*directory.COLUMNS, *history.COLUMNS),
    indexes=history.INDEXES,
)
METRICS = Projection(
    name="metrics",
    ddl=metrics.DDL,
    handlers=_handlers(metrics),
    tables=metrics.TABLES,
    columns=metrics.COLUMNS,
    schema=metrics.SCHEMA,
    comments=metrics.COMMENTS,
    flush=metrics.flush,
)
PROJECTIONS = {p.name: p for p in (READ_MODELS, METRICS)}
NAME = READ_MODELS.name


def create_tables(db: ReadModelDB, projection: Projection = READ_MODELS) -> None:
    with db.transaction() as cur:
        for ddl in (TRACKING_DDL, *db.dialect(projection.ddl)):
            cur.execute(ddl)
        cur.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (?, 0)"
            " ON CONFLICT (name) DO NOTHING",
            (projection.name,),
        )
    for table, column, kind in projection.columns:
        if column not in db.columns(table):
            with db.transaction() as cur:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
    if projection.indexes:
        with db.transaction() as cur:
            for index in projection.indexes:
                cur.execute(index)
    if db.is_postgres and projection.comments:
        with db.transaction() as cur:
            for table, (about, columns) in projection.comments.items():
                cur.execute(f"COMMENT ON TABLE {table} IS {_literal(about)}")
                for column, text in columns.items():
                    cur.execute(f"COMMENT ON COLUMN {table}.{column} IS {_literal(text)}")


def _literal(text: str) -> str:
    """A SQL string literal of our own (constant) text."""
    return "'" + text.replace("'", "''") + "'"


def position(db: ReadModelDB, projection: Projection = READ_MODELS) -> int:
    rows = db.query("SELECT position FROM projection_tracking WHERE name = ?", (projection.name,))
    return int(rows[0]["position"]) if rows else 0


def catch_up(
    app: Application[Any],
    db: ReadModelDB,
    batch: int = BATCH,
    projection: Projection = READ_MODELS,
) -> int:
    """Apply up to `batch` events after the tracked position; returns how many were read."""
    lock = " FOR UPDATE" if db.is_postgres else ""
    with db.transaction(buffered=True) as cur:  # the handlers' writes: few round trips
        row = cur.execute(
            f"SELECT position FROM projection_tracking WHERE name = ?{lock}", (projection.name,)
        ).fetchone()
        start = int(_first(row)) if row is not None else 0
        notifications = app.recorder.select_notifications(
            start=start, limit=batch, inclusive_of_start=False
        )
        if notifications:
            flush_store_log(app)
        batch = Batch(cur)
        for event in paired([event_of(app, n) for n in notifications]):
            for handler in projection.handlers.get(type(event), ()):
                handler(batch, event)
        if projection.flush is not None:
            projection.flush(batch)
        if notifications:
            cur.execute(
                "INSERT INTO projection_tracking (name, position) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                (projection.name, notifications[-1].id),
            )
    return len(notifications)


def flush_store_log(app: Application[Any]) -> None:
    """A SQLite store's write-ahead log flushed to the disk, so that no read model holds an
    event a power cut could still take from the store: some of its commits are not flushed
    when made (`AsyncEventStore`, `synced=False`), and a read model ahead of its store would
    skip the events that take their ids. One fsync per fold, off the request path; a no-op
    on PostgreSQL, whose read models share the store's log and flush it with their commit."""
    recorder = app.recorder
    if not isinstance(recorder, SQLiteApplicationRecorder):
        return
    pool = recorder.datastore.pool
    if pool.is_sqlite_memory_mode:
        return
    try:
        fd = os.open(f"{pool.db_name}-wal", os.O_RDONLY)
    except FileNotFoundError:  # checkpointed and removed: the database file holds it all
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def catch_up_fully(app: Application[Any], db: ReadModelDB, projection: Projection) -> int:
    """Fold everything committed before the call, batch by batch; how many were read."""
    total = 0
    while True:
        read = catch_up(app, db, BATCH, projection)
        total += read
        if read < BATCH:
            return total


def reset(db: ReadModelDB, projection: Projection) -> None:
    """Empty the projection's tables and set its position back to the start, at once."""
    with db.transaction() as cur:
        lock = " FOR UPDATE" if db.is_postgres else ""
        cur.execute(f"SELECT position FROM projection_tracking WHERE name = ?{lock}",
                    (projection.name,))  # fmt: skip
        for table in projection.tables:
            cur.execute(f"DELETE FROM {table}")
        cur.execute(
            "UPDATE projection_tracking SET position = 0 WHERE name = ?", (projection.name,)
        )


def rebuild(app: Application[Any], db: ReadModelDB, projection: Projection) -> int:
    """Refold the projection from the first event; how many events were read."""
    reset(db, projection)
    return catch_up_fully(app, db, projection)


def lag(app: Application[Any], db: ReadModelDB, projection: Projection) -> dict[str, Any]:
    """How far the projection is behind the store: events, and the age of the oldest one
    not yet folded (0 when it is level)."""
    tracked = position(db, projection)
    head = app.recorder.max_notification_id() or 0
    seconds = 0.0
    if head > tracked:
        oldest = app.recorder.select_notifications(start=tracked, limit=1, inclusive_of_start=False)
        if oldest:  # else the events after it were erased a moment ago
            written = app.mapper.to_domain_event(oldest[0]).timestamp.timestamp()
            seconds = max(0.0, time.time() - written)
    return {
        "name": projection.name,
        "position": tracked,
        "head": head,
        "lag_events": max(0, head - tracked),
        "lag_seconds": round(seconds, 3),
    }


def _first(row: Any) -> Any:
    return row[0] if not isinstance(row, dict) else next(iter(row.values()))
