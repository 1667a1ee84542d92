"""Everything the event store holds about one tenant: found, exported, erased.

A tenant's aggregates are the tenant itself, every agent it ever added and every execution
the history read model lists for it. Export redacts what is sealed or hashed; erasure
deletes their events outright (on SQLite with secure_delete and a truncating checkpoint, so
no copy stays in the file or its WAL; on PostgreSQL followed by VACUUM).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from actors.secrets import SEALED_FIELDS
from domain.erasure import Erasure
from domain.idempotency import IdempotencyKey
from domain.migration import Migration

log = logging.getLogger(__name__)

REDACTED_FIELDS = {"key_hash", *SEALED_FIELDS}
SKIPPED_FIELDS = {"originator_id", "originator_version", "timestamp"}


def aggregate_ids(app: Application[UUID], tenant_id: str, execution_ids: list[str]) -> list[UUID]:
    """The tenant's aggregates: itself, the agents it added, the executions listed, and its
    idempotency keys."""
    tenant = UUID(tenant_id)
    ids = [tenant]
    for stored in app.recorder.select_events(tenant):
        event = app.mapper.to_domain_event(stored)
        agent_id = getattr(event, "agent_id", None)
        if type(event).__name__ == "AgentAdded" and agent_id:
            ids.append(UUID(agent_id))
    ids += [UUID(e) for e in execution_ids]
    ids += idempotency_key_ids(app, tenant_id)
    ids += migration_ids(app, tenant_id)
    return list(dict.fromkeys(ids))


def migration_ids(app: Application[UUID], tenant_id: str) -> list[UUID]:
    """The tenant's migrations and what each created (retracted executions included: they
    are no longer in history), found by the migrations' first events."""
    found = []
    topic = get_topic(Migration.Started)
    notes = app.recorder.select_notifications(start=None, limit=10_000_000, topics=[topic])
    for note in notes:
        event = app.mapper.to_domain_event(note)
        if event.tenant_id != tenant_id:
            continue
        found.append(event.originator_id)
        migration = app.repository.get(event.originator_id)
        found += [UUID(r["id"]) for r in migration.records if r["kind"] != "state_agent_config"]
    return found


def idempotency_key_ids(app: Application[UUID], tenant_id: str) -> list[UUID]:
    """The tenant's idempotency keys (their ids are hashes, found by their first event)."""
    found = []
    topic = get_topic(IdempotencyKey.Claimed)
    notes = app.recorder.select_notifications(start=None, limit=10_000_000, topics=[topic])
    for note in notes:
        event = app.mapper.to_domain_event(note)
        if event.tenant_id == tenant_id:
            found.append(event.originator_id)
    return found


def exported_events(app: Application[UUID], ids: list[UUID]) -> Iterator[dict[str, Any]]:
    for aggregate_id in ids:
        for stored in app.recorder.select_events(aggregate_id):
            event = app.mapper.to_domain_event(stored)
            data = {
                k: ("[sealed]" if k in REDACTED_FIELDS else v)
                for k, v in vars(event).items()
                if k not in SKIPPED_FIELDS
            }
            yield {
                "kind": "event",
                "aggregate_id": str(aggregate_id),
                "version": stored.originator_version,
                "topic": stored.topic,
                "timestamp": event.timestamp.isoformat(),
                "data": json.loads(json.dumps(data, default=str)),
            }


def _hold_high_water(
    app: Application[UUID], cursor: Any, table: str, newest: int, erased: int
) -> None:
    """SQLite: if the newest event went, an `Erasure` event takes its notification id, so the
    ids already passed by projections are never handed out again (PostgreSQL's sequence
    never reuses one)."""
    cursor.execute(f"SELECT 1 FROM {table} WHERE rowid = ?", (newest,))
    if cursor.fetchone() is not None:
        return
    [created] = Erasure(erased_events=erased).collect_events()
    stored = app.mapper.to_stored_event(created)
    cursor.execute(
        f"INSERT INTO {table} (rowid, originator_id, originator_version, topic, state)"
        " VALUES (?, ?, ?, ?, ?)",
        (newest, stored.originator_id.hex, stored.originator_version, stored.topic,
         stored.state),
    )  # fmt: skip


def erase_events(app: Application[UUID], ids: list[UUID]) -> int:
    """Delete every event of `ids`; how many went."""
    datastore: Any = app.recorder.datastore  # type: ignore[attr-defined]
    table = app.recorder.events_table_name  # type: ignore[attr-defined]
    postgres = "postgres" in type(datastore).__module__
    erased = sum(len(app.recorder.select_events(aggregate_id)) for aggregate_id in ids)
    with datastore.transaction(commit=True) as cursor:
        if not postgres:
            cursor.execute("PRAGMA secure_delete = ON")
            cursor.execute(f"SELECT MAX(rowid) FROM {table}")
            newest = cursor.fetchone()[0]
        for aggregate_id in ids:
            if postgres:
                cursor.execute(f"DELETE FROM {table} WHERE originator_id = %s", (aggregate_id,))
            else:
                cursor.execute(f"DELETE FROM {table} WHERE originator_id = ?", (aggregate_id.hex,))
        if not postgres and newest is not None:
            _hold_high_water(app, cursor, table, newest, erased)
    if postgres:
        try:  # dead rows keep their bytes until vacuumed
            with datastore.get_connection() as conn:
                conn.commit()
                conn.autocommit = True
                conn.execute(f"VACUUM {table}")
                conn.autocommit = False
        except Exception as exc:  # autovacuum will get to it; the events are gone either way
            log.warning("VACUUM after an erasure failed: %s", type(exc).__name__)
    else:
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return erased
