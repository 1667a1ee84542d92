"""Budget queries over the read models: what a scope spent since a time (execution history),
and a tenant's budget events (audit trail) for the live feed."""

from __future__ import annotations

import json
from typing import Any

from domain.budgets import agent_of
from projections.db import ReadModelDB

FEED_KINDS = ("budget.set", "budget.removed", "budget.threshold_crossed")
_VERSION = "CAST(SUBSTR(entry_id, 38) AS BIGINT)"  # entry ids are `<tenant uuid>:<version>`


def spent_since(db: ReadModelDB, tenant_id: str, since: dict[str, float]) -> dict[str, float]:
    """Per scope (`tenant` or `agent:<id>`), the cost of the tenant's finished executions
    that started at or after the scope's time (unix seconds)."""
    spent = {}
    for scope, start in since.items():
        sql = (
            "SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM executions"
            " WHERE tenant_id = ? AND started_at >= ? AND status <> 'running'"
        )
        params: list[Any] = [tenant_id, start]
        agent_id = agent_of(scope)
        if agent_id is not None:
            sql += " AND agent_id = ?"
            params.append(agent_id)
        spent[scope] = round(float(db.query(sql, params)[0]["spent"] or 0.0), 9)
    return spent


def events_after(db: ReadModelDB, tenant_id: str, after: int, limit: int) -> list[dict[str, Any]]:
    """The tenant's budget events (set, removed, threshold crossed) after its aggregate's
    version `after`, oldest first, as SSE events: `id` (that version), `event`, `data`."""
    placeholders = ", ".join("?" for _ in FEED_KINDS)
    rows = db.query(
        f"SELECT entry_id, at, kind, actor, detail FROM audit_log WHERE tenant_id = ?"
        f" AND kind IN ({placeholders}) AND {_VERSION} > ? ORDER BY {_VERSION} LIMIT ?",
        [tenant_id, *FEED_KINDS, after, limit],
    )
    return [
        {
            "id": int(row["entry_id"].rpartition(":")[2]),
            "event": row["kind"].replace(".", "_"),
            "data": {"at": row["at"], "actor": row["actor"], **json.loads(row["detail"] or "{}")},
        }
        for row in rows
    ]
