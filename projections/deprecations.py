"""Deprecated field usage: per tenant and field, how many operations used it, first and last
seen; folded from `DeprecatedUsage` events (batches recorded by the ingress)."""

from __future__ import annotations

from typing import Any

from domain.deprecations import DeprecatedUsage
from projections.db import Cursor, ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS deprecated_usage (
        tenant_id TEXT NOT NULL,
        field TEXT NOT NULL,
        count BIGINT NOT NULL,
        first_used_at DOUBLE PRECISION NOT NULL,
        last_used_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (tenant_id, field)
    )""",
)
TABLES = ("deprecated_usage",)


def on_recorded(cur: Cursor, event: Any) -> None:
    """Add a batch's counts, for tenants that exist (as the audit trail keeps refusals)."""
    for row in event.rows:
        known = cur.execute(
            "SELECT 1 FROM tenants WHERE tenant_id = ?", (row["tenant_id"],)
        ).fetchone()
        if not known:
            continue
        cur.execute(
            "INSERT INTO deprecated_usage (tenant_id, field, count, first_used_at,"
            " last_used_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, field) DO UPDATE"
            " SET count = deprecated_usage.count + excluded.count,"
            " first_used_at = CASE WHEN excluded.first_used_at < deprecated_usage.first_used_at"
            " THEN excluded.first_used_at ELSE deprecated_usage.first_used_at END,"
            " last_used_at = CASE WHEN excluded.last_used_at > deprecated_usage.last_used_at"
            " THEN excluded.last_used_at ELSE deprecated_usage.last_used_at END",
            (row["tenant_id"], row["field"], row["count"], row["first_at"], row["last_at"]),
        )


HANDLERS = {DeprecatedUsage.Recorded: on_recorded}


def usage(db: ReadModelDB, tenant_id: str | None) -> list[dict[str, Any]]:
    """The tenant's rows (every tenant's when `tenant_id` is None), most used first."""
    sql = "SELECT tenant_id, field, count, first_used_at, last_used_at FROM deprecated_usage"
    params: tuple[Any, ...] = ()
    if tenant_id is not None:
        sql += " WHERE tenant_id = ?"
        params = (tenant_id,)
    sql += " ORDER BY count DESC, tenant_id, field"
    return db.query(sql, params)
