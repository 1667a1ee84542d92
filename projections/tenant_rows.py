"""One tenant's rows in the read models: exported, and erased with the tenant."""

from __future__ import annotations

from typing import Any

from projections.db import ReadModelDB

# table → what may be exported of it (never a key hash)
TABLES = {
    "tenants": "*",
    "api_keys": "key_id, hint, scopes, expires_at, issued_at, revoked_at, last_used_at",
    "executions": "*",
    "audit_log": "*",
}


def execution_ids(db: ReadModelDB, tenant_id: str) -> list[str]:
    rows = db.query("SELECT execution_id FROM executions WHERE tenant_id = ?", (tenant_id,))
    return [row["execution_id"] for row in rows]


def exported_rows(db: ReadModelDB, tenant_id: str) -> list[dict[str, Any]]:
    out = []
    for table, columns in TABLES.items():
        for row in db.query(f"SELECT {columns} FROM {table} WHERE tenant_id = ?", (tenant_id,)):
            out.append({"kind": "row", "table": table, "data": row})
    return out


def erase_rows(db: ReadModelDB, tenant_id: str) -> int:
    erased = 0
    with db.transaction() as cur:
        if not db.is_postgres:
            cur.execute("PRAGMA secure_delete = ON")
        for table in TABLES:
            erased += max(
                cur.execute(f"DELETE FROM {table} WHERE tenant_id = ?", (tenant_id,)).rowcount, 0
            )
    if not db.is_postgres:
        db.query("PRAGMA wal_checkpoint(TRUNCATE)")
    return erased
