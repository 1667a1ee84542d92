"""Execution history: one row per execution, folded from Execution events."""

from __future__ import annotations

import json
from typing import Any, Protocol

from domain.execution import Execution
from domain.results import ExecutionResult, Outcome
from projections.db import Cursor, ReadModelDB
from projections.decoded import outcome_of

DDL = (
    """CREATE TABLE IF NOT EXISTS executions (
        execution_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        agent_id TEXT NOT NULL,
        status TEXT NOT NULL,
        model_requested TEXT,
        model_resolved TEXT,
        provider TEXT,
        stream BOOLEAN,
        prompt_tokens BIGINT DEFAULT 0,
        completion_tokens BIGINT DEFAULT 0,
        total_tokens BIGINT DEFAULT 0,
        cost_usd DOUBLE PRECISION DEFAULT 0,
        started_at DOUBLE PRECISION,
        completed_at DOUBLE PRECISION,
        duration_ms DOUBLE PRECISION,
        error_type TEXT,
        error_message TEXT,
        result_json TEXT,
        kind TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS executions_by_agent ON executions "
    "(tenant_id, agent_id, started_at)",
    "CREATE INDEX IF NOT EXISTS executions_by_tenant ON executions (tenant_id, started_at)",
)


# columns added after the table was first made: (table, column, type)
COLUMNS = (("executions", "kind", "TEXT"),)
AGENT_EXECUTION = "agent_execution"  # the kind of executions recorded before kinds were kept


def on_started(cur: Cursor, event: Any) -> None:
    cur.execute(
        "INSERT INTO executions (execution_id, tenant_id, agent_id, status, model_requested,"
        " stream, started_at, kind) VALUES (?, ?, ?, 'running', ?, ?, ?, ?)"
        " ON CONFLICT (execution_id) DO NOTHING",
        (
            str(event.originator_id),
            event.tenant_id,
            event.agent_id,
            event.model_requested,
            bool(event.stream),
            event.timestamp.timestamp(),
            getattr(event, "kind", AGENT_EXECUTION),
        ),
    )


def on_model_resolved(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE executions SET model_resolved = ?, provider = ? WHERE execution_id = ?",
        (event.model, event.provider, str(event.originator_id)),
    )


def on_progressed(cur: Cursor, event: Any) -> None:
    """A streamed execution's checkpoint: its usage so far (estimated) while it runs."""
    usage = event.usage or {}
    cur.execute(
        "UPDATE executions SET prompt_tokens = ?, completion_tokens = ?, total_tokens = ?,"
        " cost_usd = ? WHERE execution_id = ? AND status = 'running'",
        (
            usage.get("prompt_tokens", 0),
            usage.get("completion_tokens", 0),
            usage.get("total_tokens", 0),
            usage.get("cost_usd", 0.0),
            str(event.originator_id),
        ),
    )


def _finish(cur: Cursor, event: Any, status: str) -> None:
    """The terminal facts; `result_json` keeps the `Outcome`, shown through `_view`."""
    outcome = outcome_of(event)
    usage, error = outcome.usage, outcome.error
    cur.execute(
        "UPDATE executions SET status = ?, model_resolved = COALESCE(?, model_resolved),"
        " provider = COALESCE(?, provider), prompt_tokens = ?, completion_tokens = ?,"
        " total_tokens = ?, cost_usd = ?, completed_at = ?, duration_ms = ?, error_type = ?,"
        " error_message = ?, result_json = ? WHERE execution_id = ?",
        (
            status,
            outcome.model_resolved,
            outcome.provider,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.total_tokens,
            outcome.cost_usd,
            event.timestamp.timestamp(),
            outcome.duration_ms,
            error.type if error else None,
            _sealed(error.message if error else None),
            _sealed(json.dumps(outcome.facts())),
            str(event.originator_id),
        ),
    )


class _Box(Protocol):
    def seal(self, plaintext: str) -> str: ...
    def open(self, token: str) -> str: ...


SEALED = "sealed:"
_box: _Box | None = None  # set in the projection actor when payloads are encrypted


SEALED_COLUMNS = ("result_json", "error_message")  # may echo prompts and answers


def seal_results_with(box: _Box | None) -> None:
    """Keep results (prompts' answers, tool outputs) and error messages (a provider's may
    quote the prompt) sealed in the read model from now on."""
    global _box
    _box = box


def _sealed(text: str | None) -> str | None:
    return SEALED + _box.seal(text) if _box is not None and text is not None else text


def _opened(text: str | None) -> str | None:
    if text is not None and text.startswith(SEALED):
        if _box is None:
            raise RuntimeError("a sealed result, and no key to open it (CB_ENCRYPT_PAYLOADS)")
        text = _box.open(text[len(SEALED) :])
    return text


def on_completed(cur: Cursor, event: Any) -> None:
    _finish(cur, event, "completed")


def on_failed(cur: Cursor, event: Any) -> None:
    _finish(cur, event, "failed")


def on_cancelled(cur: Cursor, event: Any) -> None:
    _finish(cur, event, "cancelled")


HANDLERS = {
    Execution.Cancelled: on_cancelled,
    Execution.Started: on_started,
    Execution.ModelResolved: on_model_resolved,
    Execution.Progressed: on_progressed,
    Execution.Completed: on_completed,
    Execution.Failed: on_failed,
}

_COLUMNS = (
    "execution_id, tenant_id, agent_id, status, model_requested, model_resolved, provider,"
    " stream, prompt_tokens, completion_tokens, total_tokens, cost_usd, started_at,"
    " completed_at, duration_ms, error_type, error_message, result_json, kind"
)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    """An execution as the API shows it: its result from the stored outcome, or the running
    state."""
    result = _result(row, json.loads(_opened(row["result_json"]) or "null"))
    view = {
        "execution_id": row["execution_id"],
        "kind": row["kind"] or AGENT_EXECUTION,
        "agent_id": row["agent_id"] or None,
        "status": row["status"],
        "model_requested": row["model_requested"],
        "model_resolved": row["model_resolved"],
        "provider": row["provider"],
        "stream": bool(row["stream"]),
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "usage": {
            "prompt_tokens": row["prompt_tokens"] or 0,
            "completion_tokens": row["completion_tokens"] or 0,
            "total_tokens": row["total_tokens"] or 0,
            "cost_usd": row["cost_usd"] or 0.0,
        },
        "duration_ms": row["duration_ms"],
        "error": {"type": row["error_type"], "message": _opened(row["error_message"])}
        if row["error_type"]
        else None,
    }
    if result:
        view["response"] = result.get("response")
        view["metadata"] = result.get("metadata")
    return view


def _result(row: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stored or "metadata" in stored:  # none yet, or a row folded before outcomes
        return stored
    outcome = Outcome.model_validate(stored)
    return ExecutionResult.of(
        row["execution_id"], row["agent_id"], row["status"], row["model_requested"], outcome
    ).as_api()


def get_execution(db: ReadModelDB, tenant_id: str, execution_id: str) -> dict[str, Any] | None:
    rows = db.query(
        f"SELECT {_COLUMNS} FROM executions WHERE tenant_id = ? AND execution_id = ?",
        (tenant_id, execution_id),
    )
    return _view(rows[0]) if rows else None


def list_executions(
    db: ReadModelDB,
    tenant_id: str,
    agent_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: float | None = None,
    kind: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before` (a started_at) pages backwards."""
    sql = f"SELECT {_COLUMNS} FROM executions WHERE tenant_id = ?"
    params: list[Any] = [tenant_id]
    if kind == AGENT_EXECUTION:
        sql += " AND (kind = ? OR kind IS NULL)"
        params.append(kind)
    elif kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    for column, value in (("agent_id", agent_id), ("status", status)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    if before is not None:
        sql += " AND started_at < ?"
        params.append(before)
    sql += " ORDER BY started_at DESC LIMIT ?"
    params.append(limit)
    return [_view(row) for row in db.query(sql, params)]
