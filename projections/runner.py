"""Folds new events into every read model, recording the position in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.application import Application

from projections import audit, directory, history
from projections.db import ReadModelDB

TRACKING_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_tracking (name TEXT PRIMARY KEY, position BIGINT)"
)
NAME = "read_models"
BATCH = 500  # events folded per transaction

Handler = Callable[[Any, Any], None]
HANDLERS: dict[type, list[Handler]] = {}
for _handlers in (history.HANDLERS, directory.HANDLERS, audit.HANDLERS):
    for _type, _handler in _handlers.items():
        HANDLERS.setdefault(_type, []).append(_handler)


def create_tables(db: ReadModelDB) -> None:
    with db.transaction() as cur:
        for ddl in (TRACKING_DDL, *history.DDL, *directory.DDL, *audit.DDL):
            cur.execute(ddl)
    for table, column, kind in (*directory.COLUMNS, *history.COLUMNS):
        if column not in db.columns(table):
            with db.transaction() as cur:
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def position(db: ReadModelDB) -> int:
    rows = db.query("SELECT position FROM projection_tracking WHERE name = ?", (NAME,))
    return int(rows[0]["position"]) if rows else 0


def catch_up(app: Application[Any], db: ReadModelDB, batch: int = BATCH) -> int:
    """Apply every event after the tracked position; returns how many were read."""
    start = position(db)
    notifications = app.recorder.select_notifications(
        start=start, limit=batch, inclusive_of_start=False
    )
    if not notifications:
        return 0
    with db.transaction() as cur:
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            for handler in HANDLERS.get(type(event), ()):
                handler(cur, event)
        cur.execute(
            "INSERT INTO projection_tracking (name, position) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            (NAME, notifications[-1].id),
        )
    return len(notifications)
