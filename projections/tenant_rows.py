"""One tenant's rows in the read models: exported, and erased with the tenant."""

from __future__ import annotations

from typing import Any

from projections import metrics
from projections.db import ReadModelDB

# table → what may be exported of it (never a key hash)
TABLES = {
    "tenants": "*",
    "api_keys": "key_id, hint, scopes, expires_at, issued_at, revoked_at, last_used_at",
    "executions": "*",
    "execution_feedback": "*",
    "audit_log": "*",
    "deprecated_usage": "*",
    "collaboration_runs": "*",
    "collaboration_steps": "*",
}
METRIC_TABLES = {table: "*" for table in metrics.TABLES}


def execution_ids(db: ReadModelDB, tenant_id: str) -> list[str]:
    rows = db.query("SELECT execution_id FROM executions WHERE tenant_id = ?", (tenant_id,))
    return [row["execution_id"] for row in rows]


def exported_rows(
    db: ReadModelDB, tenant_id: str, tables: dict[str, str] = TABLES
) -> list[dict[str, Any]]:
    out = []
    for table, columns in tables.items():
        for row in db.query(f"SELECT {columns} FROM {table} WHERE tenant_id = ?", (tenant_id,)):
            data = {k: metrics.shown(v) for k, v in row.items()}  # times as text
            out.append({"kind": "row", "table": table, "data": data})
    return out


def erase_rows(db: ReadModelDB, tenant_id: str, tables: dict[str, str] = TABLES) -> int:
    erased = 0
    with db.transaction() as cur:
        if not db.is_postgres:
            cur.execute("PRAGMA secure_delete = ON")
        for table in tables:
            erased += max(
                cur.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant_id,)).rowcount, 0
            )
    if not db.is_postgres:
        db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return erased
