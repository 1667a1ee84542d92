"""Collaboration runs read model: one row per run and per (run, step), folded from the
`CollaborationRun` events; the run listing (`GET /api/v1/collaboration-runs`) and the
collaboration analytics (completion rate, duration, cost per run and per step) read it."""

from __future__ import annotations

import math
from typing import Any

from domain.collaboration_run import CollaborationRun
from projections.db import Cursor, ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS collaboration_runs (
        run_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        collaboration_id TEXT,
        version INTEGER,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        ended_at DOUBLE PRECISION,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        total_tokens BIGINT NOT NULL DEFAULT 0,
        started_by TEXT,
        error_type TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS collaboration_runs_by_tenant ON collaboration_runs"
    " (tenant_id, started_at)",
    """CREATE TABLE IF NOT EXISTS collaboration_steps (
        run_id TEXT NOT NULL,
        step_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
        duration_ms DOUBLE PRECISION,
        PRIMARY KEY (run_id, step_id)
    )""",
)
TABLES = ("collaboration_runs", "collaboration_steps")
RUN_STATUSES = ("running", "completed", "failed", "cancelled")


def on_started(cur: Cursor, event: Any) -> None:
    cur.execute(
        "INSERT INTO collaboration_runs (run_id, tenant_id, collaboration_id, version, name,"
        " status, started_at, started_by) VALUES (?, ?, ?, ?, ?, 'running', ?, ?)"
        " ON CONFLICT (run_id) DO NOTHING",
        (
            str(event.originator_id),
            event.tenant_id,
            event.collaboration_id,
            event.version,
            event.definition["name"],
            event.timestamp.timestamp(),
            event.by,
        ),
    )
    for step in event.definition["steps"]:
        cur.execute(
            "INSERT INTO collaboration_steps (run_id, step_id, tenant_id, status)"
            " VALUES (?, ?, ?, 'pending') ON CONFLICT (run_id, step_id) DO NOTHING",
            (str(event.originator_id), step["id"], event.tenant_id),
        )


def _step(cur: Cursor, event: Any, status: str, usage: dict[str, Any] | None) -> None:
    cost = float((usage or {}).get("cost_usd") or 0.0)
    tokens = int((usage or {}).get("total_tokens") or 0)
    run_id = str(event.originator_id)
    cur.execute(
        "UPDATE collaboration_steps SET status = ?, cost_usd = cost_usd + ?,"
        " duration_ms = COALESCE(?, duration_ms) WHERE run_id = ? AND step_id = ?",
        (status, cost, getattr(event, "duration_ms", None), run_id, event.step_id),
    )
    if cost or tokens:
        cur.execute(
            "UPDATE collaboration_runs SET cost_usd = cost_usd + ?,"
            " total_tokens = total_tokens + ? WHERE run_id = ?",
            (cost, tokens, run_id),
        )


def on_step_started(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE collaboration_steps SET status = 'running', attempts = ?"
        " WHERE run_id = ? AND step_id = ?",
        (event.attempt, str(event.originator_id), event.step_id),
    )


def on_step_completed(cur: Cursor, event: Any) -> None:
    _step(cur, event, "completed", event.usage)


def on_step_failed(cur: Cursor, event: Any) -> None:
    _step(cur, event, "failed" if event.final else "retrying", event.usage)


def on_step_skipped(cur: Cursor, event: Any) -> None:
    _step(cur, event, "skipped", None)


def on_ended(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE collaboration_runs SET status = ?, ended_at = ?, error_type = ? WHERE run_id = ?",
        (
            event.status,
            event.timestamp.timestamp(),
            (event.error or {}).get("type"),
            str(event.originator_id),
        ),
    )


HANDLERS = {
    CollaborationRun.Started: on_started,
    CollaborationRun.StepStarted: on_step_started,
    CollaborationRun.StepCompleted: on_step_completed,
    CollaborationRun.StepFailed: on_step_failed,
    CollaborationRun.StepSkipped: on_step_skipped,
    CollaborationRun.Ended: on_ended,
}


def list_runs(
    db: ReadModelDB,
    tenant_id: str,
    status: str | None = None,
    collaboration_id: str | None = None,
    before: float | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The tenant's runs, newest first."""
    sql = "SELECT * FROM collaboration_runs WHERE tenant_id = ?"
    params: list[Any] = [tenant_id]
    for column, value in (("status", status), ("collaboration_id", collaboration_id)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    if before is not None:
        sql += " AND started_at < ?"
        params.append(before)
    rows = db.query(sql + " ORDER BY started_at DESC, run_id LIMIT ?", (*params, limit))
    return [_run_row(r) for r in rows]


def _run_row(row: dict[str, Any]) -> dict[str, Any]:
    ended = row["ended_at"]
    return {
        "run_id": row["run_id"],
        "collaboration_id": row["collaboration_id"],
        "version": row["version"],
        "name": row["name"],
        "status": row["status"],
        "started_at": row["started_at"],
        "ended_at": ended,
        "duration_ms": round((ended - row["started_at"]) * 1000, 3) if ended else None,
        "cost_usd": round(row["cost_usd"], 9),
        "total_tokens": row["total_tokens"],
        "by": row["started_by"],
        "error_type": row["error_type"],
    }


def analytics(
    db: ReadModelDB, tenant_id: str, start: float, end: float, collaboration_id: str | None
) -> dict[str, Any]:
    """Per collaboration (by id, or by name for inline runs) in [start, end): runs by
    status, completion rate of the ended ones, duration p50/p95, cost per run; per step:
    how its runs went, its cost per run and duration p50."""
    sql = (
        "SELECT * FROM collaboration_runs"
        " WHERE tenant_id = ? AND started_at >= ? AND started_at < ?"
    )
    params: list[Any] = [tenant_id, start, end]
    if collaboration_id is not None:
        sql += " AND collaboration_id = ?"
        params.append(collaboration_id)
    runs = [_run_row(r) for r in db.query(sql, params)]
    steps: dict[str, list[dict[str, Any]]] = {}
    if runs:
        marks = ", ".join("?" for _ in runs)
        for row in db.query(
            f"SELECT * FROM collaboration_steps WHERE tenant_id = ? AND run_id IN ({marks})",
            (tenant_id, *(r["run_id"] for r in runs)),
        ):
            steps.setdefault(row["run_id"], []).append(row)
    groups: dict[tuple[str | None, str], list[dict[str, Any]]] = {}
    for run in runs:
        key = (
            (run["collaboration_id"], run["name"])
            if run["collaboration_id"]
            else (None, run["name"])
        )
        groups.setdefault(key, []).append(run)
    out = []
    for (cid, name), mine in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0] or "")):
        out.append(_figures(cid, name, mine, [s for r in mine for s in steps.get(r["run_id"], [])]))
    return {"from": start, "to": end, "collaborations": out}


def _figures(
    collaboration_id: str | None, name: str, runs: list[dict[str, Any]], steps: list[dict[str, Any]]
) -> dict[str, Any]:
    by_status = {s: sum(1 for r in runs if r["status"] == s) for s in RUN_STATUSES}
    ended = len(runs) - by_status["running"]
    durations = [r["duration_ms"] for r in runs if r["duration_ms"] is not None]
    cost = sum(r["cost_usd"] for r in runs)
    per_step: dict[str, list[dict[str, Any]]] = {}
    for row in steps:
        per_step.setdefault(row["step_id"], []).append(row)
    return {
        "collaboration_id": collaboration_id,
        "name": name,
        "runs": len(runs),
        **by_status,
        "completion_rate": round(by_status["completed"] / ended, 6) if ended else None,
        "duration_ms": {"p50": _rank(durations, 0.5), "p95": _rank(durations, 0.95)},
        "cost_usd": round(cost, 9),
        "cost_per_run_usd": round(cost / len(runs), 9) if runs else None,
        "steps": [
            {
                "step_id": step_id,
                "runs": len(rows),
                **{
                    s: sum(1 for r in rows if r["status"] == s)
                    for s in ("completed", "failed", "skipped")
                },
                "attempts": sum(r["attempts"] for r in rows),
                "cost_usd": round(sum(r["cost_usd"] for r in rows), 9),
                "cost_per_run_usd": round(sum(r["cost_usd"] for r in rows) / len(rows), 9),
                "duration_ms_p50": _rank(
                    [r["duration_ms"] for r in rows if r["duration_ms"] is not None], 0.5
                ),
            }
            for step_id, rows in sorted(per_step.items())
        ],
    }


def _rank(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(1, math.ceil(q * len(ordered))) - 1], 3)
