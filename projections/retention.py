"""What a retention sweep removes from the read models: expired executions' rows."""

from __future__ import annotations

from projections import feedback, metrics
from projections.db import ReadModelDB


def expired_executions(db: ReadModelDB, tenant_id: str, before: float) -> list[str]:
    """The tenant's executions that started before `before` (a Unix time)."""
    rows = db.query(
        "SELECT execution_id FROM executions WHERE tenant_id = ? AND started_at < ?",
        (tenant_id, before),
    )
    return [row["execution_id"] for row in rows]


def delete_executions(db: ReadModelDB, metrics_db: ReadModelDB, tenant_id: str,
                      ids: list[str], before: float) -> None:  # fmt: skip
    """Their history rows and facts, and the roll-ups of whole hours and days before."""
    with db.transaction() as cur:
        for execution_id in ids:
            cur.execute(
                "DELETE FROM executions WHERE tenant_id = ? AND execution_id = ?",
                (tenant_id, execution_id),
            )
            feedback.delete_for(cur, tenant_id, execution_id)
    with metrics_db.transaction() as cur:
        cur.execute(
            "DELETE FROM execution_facts WHERE tenant_id = ? AND started_at < ?",
            (tenant_id, metrics.instant(before)),
        )
        cur.execute(
            "DELETE FROM usage_hourly WHERE tenant_id = ? AND hour < ?",
            (tenant_id, metrics.hour_of(before)),
        )
        cur.execute(
            "DELETE FROM usage_daily WHERE tenant_id = ? AND day < ?",
            (tenant_id, metrics.day_of(before)),
        )
