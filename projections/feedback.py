"""Feedback read model: each score (and each judge failure) given on an execution, shown
in its record (`GET /api/v1/executions/{id}`) as `feedback` and `quality`."""

from __future__ import annotations

import json
from typing import Any

from domain import shredding
from domain.execution import Execution
from projections import history
from projections.db import Cursor, ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS execution_feedback (
        feedback_id TEXT PRIMARY KEY,
        execution_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        given_at DOUBLE PRECISION NOT NULL,
        score DOUBLE PRECISION,
        label TEXT,
        source TEXT NOT NULL,
        comment TEXT,
        given_by TEXT,
        judge_json TEXT,
        error_type TEXT,
        error_message TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS execution_feedback_by_execution ON execution_feedback"
    " (tenant_id, execution_id)",
)
TABLES = ("execution_feedback",)


def on_feedback(cur: Cursor, event: Any) -> None:
    kid = getattr(event, "payload_kid", None)
    cur.execute(
        "INSERT INTO execution_feedback (feedback_id, execution_id, tenant_id, given_at, score,"
        " label, source, comment, given_by, judge_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (feedback_id) DO NOTHING",
        (
            event.feedback_id, str(event.originator_id), event.tenant_id,
            event.timestamp.timestamp(), event.score, event.label, event.source,
            _comment(event.comment, kid), event.by,
            json.dumps(event.judge) if event.judge is not None else None,
        ),
    )  # fmt: skip


def on_judge_failed(cur: Cursor, event: Any) -> None:
    """A failure has no score; its id is the event's (one per failure)."""
    kid = getattr(event, "payload_kid", None)
    message = event.error.get("message")
    cur.execute(
        "INSERT INTO execution_feedback (feedback_id, execution_id, tenant_id, given_at,"
        " source, judge_json, error_type, error_message) VALUES (?, ?, ?, ?, 'judge', ?, ?, ?)"
        " ON CONFLICT (feedback_id) DO NOTHING",
        (
            f"{event.originator_id}:{event.originator_version}", str(event.originator_id),
            event.tenant_id, event.timestamp.timestamp(), json.dumps(event.judge),
            event.error.get("type"), _comment(message, kid),
        ),
    )  # fmt: skip


def _comment(text: str | None, kid: str | None) -> str | None:
    """Sealed like the execution's other payload; an erased one stays the erased mark."""
    if text is None or text == shredding.ERASED:
        return text
    return history.sealed(text, kid)


HANDLERS = {
    Execution.FeedbackGiven: on_feedback,
    Execution.JudgeFailed: on_judge_failed,
}


def attach(db: ReadModelDB, tenant_id: str, views: list[dict[str, Any]]) -> None:
    """Give each execution view its `feedback` (oldest first) and `quality` summary."""
    if not views:
        return
    ids = [v["execution_id"] for v in views]
    marks = ", ".join("?" for _ in ids)
    rows = db.query(
        "SELECT * FROM execution_feedback WHERE tenant_id = ? AND execution_id IN"
        f" ({marks}) ORDER BY given_at, feedback_id",
        (tenant_id, *ids),
    )
    given: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for row in rows:
        given[row["execution_id"]].append(_shown(row))
    for view in views:
        items = given[view["execution_id"]]
        scores = [f["score"] for f in items if f.get("score") is not None]
        view["feedback"] = items
        view["quality"] = {
            "mean_score": round(sum(scores) / len(scores), 6) if scores else None,
            "scored": len(scores),
        }


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    judge = json.loads(row["judge_json"]) if row["judge_json"] else None
    item: dict[str, Any] = {
        "feedback_id": row["feedback_id"],
        "source": row["source"],
        "given_at": row["given_at"],
    }
    if row["error_type"] is not None:  # a judge failure
        message = history.opened_payload(row["error_message"])
        item["error"] = {"type": row["error_type"], "message": message}
    else:
        item.update(
            score=row["score"],
            label=row["label"],
            comment=history.opened_payload(row["comment"]),
            by=row["given_by"],
        )
    if judge is not None:
        item["judge"] = judge
    return item


def delete_for(cur: Cursor, tenant_id: str, execution_id: str) -> None:
    """An execution's feedback leaves with its history row (retention)."""
    cur.execute(
        "DELETE FROM execution_feedback WHERE tenant_id = ? AND execution_id = ?",
        (tenant_id, execution_id),
    )


def execution_record(db: ReadModelDB, tenant_id: str, execution_id: str) -> dict[str, Any] | None:
    """An execution as history shows it, with its feedback."""
    found = history.get_execution(db, tenant_id, execution_id)
    if found is not None:
        attach(db, tenant_id, [found])
    return found


def with_feedback(db: ReadModelDB, tenant_id: str, views: list[dict[str, Any]]) -> list[dict]:
    """`attach`, returning the views."""
    attach(db, tenant_id, views)
    return views
