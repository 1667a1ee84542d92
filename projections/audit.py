"""The audit read model: each tenant's trail, newest first, filterable by kind and time."""

from __future__ import annotations

import json
from typing import Any

from domain.audit import AUDITED, OUTLIVES_TENANT, PLATFORM, SecurityRecord, entry_of
from projections.db import Cursor, ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS audit_log (
        entry_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT,
        target TEXT,
        detail TEXT,
        source TEXT,
        count INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_log_by_tenant ON audit_log (tenant_id, at)",
)
MAX_PAGE = 500


def _insert(cur: Cursor, entry_id: str, entry: dict[str, Any]) -> None:
    cur.execute(
        "INSERT INTO audit_log (entry_id, tenant_id, at, kind, actor, target, detail, source,"
        " count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (entry_id) DO NOTHING",
        (
            entry_id,
            entry["tenant_id"],
            entry["at"],
            entry["kind"],
            entry.get("actor"),
            entry.get("target"),
            json.dumps(entry.get("detail") or {}),
            entry.get("source"),
            entry.get("count", 1),
        ),
    )


def on_audited(cur: Cursor, event: Any) -> None:
    entry = entry_of(event)
    if entry is not None:
        _insert(cur, f"{event.originator_id}:{event.originator_version}", entry)


def on_security(cur: Cursor, event: Any) -> None:
    """Refusals, kept only for tenants that exist (a flood of made-up ids stores nothing),
    and an erased tenant's `data.erased` entry."""
    for index, entry in enumerate(event.entries):
        known = (
            entry["kind"] in OUTLIVES_TENANT
            or entry["tenant_id"] == PLATFORM
            or cur.execute(
                "SELECT 1 FROM tenants WHERE tenant_id = ?", (entry["tenant_id"],)
            ).fetchone()
        )
        if known:
            _insert(cur, f"{event.originator_id}:{index}", entry)


HANDLERS = {**dict.fromkeys(AUDITED, on_audited), SecurityRecord.Created: on_security}


def list_entries(
    db: ReadModelDB,
    tenant_id: str,
    kinds: list[str],
    since: float | None,
    until: float | None,
    limit: int,
) -> list[dict[str, Any]]:
    """The tenant's trail, newest first."""
    sql = "SELECT * FROM audit_log WHERE tenant_id = ?"
    params: list[Any] = [tenant_id]
    if kinds:
        sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
        params += kinds
    if since is not None:
        sql += " AND at >= ?"
        params.append(since)
    if until is not None:
        sql += " AND at < ?"
        params.append(until)
    sql += " ORDER BY at DESC, entry_id DESC LIMIT ?"
    params.append(min(limit, MAX_PAGE))
    return [
        {
            "at": row["at"],
            "kind": row["kind"],
            "actor": row["actor"],
            "target": row["target"],
            "detail": json.loads(row["detail"] or "{}"),
            "source": row["source"],
            "count": row["count"],
        }
        for row in db.query(sql, params)
    ]
