"""Execution history: one row per execution, folded from Execution events."""

from __future__ import annotations

import json
from typing import Any, Protocol

from domain import fast_json, legacy_import, shredding
from domain.execution import Execution
from domain.imported_execution import ImportedExecution
from domain.results import Outcome, result_document
from projections.db import Cursor, ReadModelDB
from projections.decoded import ResolvedStart, outcome_of

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
        kind TEXT,
        resource_id TEXT,
        state_id TEXT,
        retry_count INTEGER,
        input_json TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS executions_by_agent ON executions "
    "(tenant_id, agent_id, started_at)",
    "CREATE INDEX IF NOT EXISTS executions_by_tenant ON executions (tenant_id, started_at)",
)


# columns added after the table was first made: (table, column, type)
COLUMNS = (
    ("executions", "kind", "TEXT"),
    ("executions", "resource_id", "TEXT"),  # tags from the request's metadata
    ("executions", "state_id", "TEXT"),
    ("executions", "retry_count", "INTEGER"),
    ("executions", "input_json", "TEXT"),  # the request without its metadata (sealed)
    ("executions", "subject_ref", "TEXT"),  # the data subject's reference (`domain.shredding`)
    ("executions", "payload_kid", "TEXT"),  # the payload key its payload is sealed under
    ("executions", "result_payload", "TEXT"),  # with a payload key: the result's payload
)
# indexes on those columns, made once they exist
INDEXES = (
    "CREATE INDEX IF NOT EXISTS executions_by_resource ON executions "
    "(tenant_id, resource_id, started_at)",
    # the cost feed (GraphQL costUpdates): a tenant's executions by when they ended
    "CREATE INDEX IF NOT EXISTS executions_by_end ON executions (tenant_id, completed_at)",
    "CREATE INDEX IF NOT EXISTS executions_by_subject ON executions (tenant_id, subject_ref)",
)
TAGS = ("resource_id", "state_id")  # metadata keys kept as columns (strings)
AGENT_EXECUTION = "agent_execution"  # the kind of executions recorded before kinds were kept


def on_started(cur: Cursor, event: Any) -> None:
    _insert(cur, event, None)


def on_resolved_start(cur: Cursor, pair: ResolvedStart) -> None:
    _insert(cur, pair.started, pair.resolved)


def _insert(cur: Cursor, event: Any, resolved: Any) -> None:
    """The execution's row as its Started event (and, if given, its ModelResolved) says."""
    request = event.request if isinstance(event.request, dict) else {}
    metadata = request.get("metadata") if isinstance(request.get("metadata"), dict) else {}
    tags = [_tag(metadata.get(name)) for name in TAGS]
    retries = metadata.get("retry_count")
    given = {k: v for k, v in request.items() if k not in ("metadata", "stream_options")}
    kid = getattr(event, "payload_kid", None)
    cur.execute(
        "INSERT INTO executions (execution_id, tenant_id, agent_id, status, model_requested,"
        " model_resolved, provider, stream, started_at, kind, resource_id, state_id,"
        " retry_count, input_json, subject_ref, payload_kid) VALUES (?, ?, ?, 'running', ?,"
        " ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO NOTHING",
        (
            str(event.originator_id),
            event.tenant_id,
            event.agent_id,
            event.model_requested,
            resolved.model if resolved is not None else None,
            resolved.provider if resolved is not None else None,
            bool(event.stream),
            event.timestamp.timestamp(),
            getattr(event, "kind", AGENT_EXECUTION),
            *tags,
            retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
            sealed(fast_json.dumps(given).decode(), kid),
            getattr(event, "subject_ref", None),
            kid,
        ),
    )


def _tag(value: Any) -> str | None:
    """A tag as kept: a string (a number as its text), else none."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return str(value)[:200] or None


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
    """The terminal facts; `result_json` keeps the `Outcome`, shown through `_view`. Under
    a payload key it keeps the clear part, and `result_payload` the payload, sealed."""
    outcome = outcome_of(event)
    usage, error = outcome.usage, outcome.error
    kid = getattr(event, "payload_kid", None)
    facts, payload = outcome.facts(), None
    if kid is not None:
        state = {"outcome": facts}
        payload = sealed(json.dumps(shredding.split(type(event).__qualname__, state)), kid)
        facts = state["outcome"]
    cur.execute(
        "UPDATE executions SET status = ?, model_resolved = COALESCE(?, model_resolved),"
        " provider = COALESCE(?, provider), prompt_tokens = ?, completion_tokens = ?,"
        " total_tokens = ?, cost_usd = ?, completed_at = ?, duration_ms = ?, error_type = ?,"
        " error_message = ?, result_json = ?, result_payload = ? WHERE execution_id = ?",
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
            sealed(error.message if error else None, kid),
            sealed(fast_json.dumps(facts).decode()),  # the hot write: orjson
            payload,
            str(event.originator_id),
        ),
    )


class _Box(Protocol):
    def seal(self, plaintext: str) -> str: ...
    def open(self, token: str) -> str: ...


class _PayloadKeys(Protocol):
    def seal_text(self, kid: str, text: str) -> str: ...
    def open_text(self, value: str) -> str | None: ...


SEALED = "sealed:"
_box: _Box | None = None  # set in the projection actor when payloads are encrypted
_payloads: _PayloadKeys | None = None  # set where the projections fold


SEALED_COLUMNS = ("result_json", "error_message", "input_json")  # prompts and answers


def seal_results_with(box: _Box | None) -> None:
    """Keep results (prompts' answers, tool outputs) and error messages (a provider's may
    quote the prompt) sealed in the read model from now on."""
    global _box
    _box = box


def seal_payloads_with(keys: _PayloadKeys | None) -> None:
    """Seal the payload of executions that have a payload key under that key (so destroying
    it erases the read model's copy too)."""
    global _payloads
    _payloads = keys


def sealed(text: str | None, kid: str | None = None) -> str | None:
    if text is not None and kid is not None:
        if _payloads is None:
            raise RuntimeError("a payload key, and no key table to seal under")
        return _payloads.seal_text(kid, text)
    return SEALED + _box.seal(text) if _box is not None and text is not None else text


def _opened(text: str | None) -> str | None:
    """The stored text opened; None when it was sealed under a payload key now destroyed."""
    if text is not None and text.startswith(shredding.SEALED_PREFIX):
        return _payloads.open_text(text) if _payloads is not None else None
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


def on_imported(cur: Cursor, event: Any) -> None:
    """A legacy execution brought over by a migration: its original times, status, input
    and output; no usage and no cost (no LLM call was made here)."""
    row = event.record
    status, error_type = legacy_import.STATUSES[row["legacy_status"]]
    imported = {
        "migration_id": event.migration_id,
        "legacy_id": row["legacy_id"],
        "legacy_agent_id": row["legacy_agent_id"],
        "legacy_status": row["legacy_status"],
        "output": row["output"],
        "note": legacy_import.NO_COST,
    }
    output = row["output"]
    content = output if isinstance(output, str) or output is None else json.dumps(output)
    result = {"response": {"content": content} if content is not None else None,
              "metadata": {"imported": imported}}  # fmt: skip
    message = row["error_message"]
    cur.execute(
        "INSERT INTO executions (execution_id, tenant_id, agent_id, status, stream, started_at,"
        " completed_at, duration_ms, error_type, error_message, result_json, kind, resource_id,"
        " state_id, retry_count, input_json) VALUES (?, ?, ?, ?, FALSE, ?, ?, ?, ?, ?, ?, ?,"
        " ?, ?, ?, ?) ON CONFLICT (execution_id) DO NOTHING",
        (
            str(event.originator_id),
            event.tenant_id,
            row["agent_id"],
            status,
            row["started_at"],
            row["completed_at"],
            row["duration_ms"],
            error_type or ("legacy_error" if message else None),
            sealed(message),
            sealed(json.dumps(result)),
            legacy_import.IMPORTED,
            _tag(row["resource_id"]),
            _tag(row["state_id"]),
            row["retry_count"],
            sealed(json.dumps(row["input"])),
        ),
    )


def on_retracted(cur: Cursor, event: Any) -> None:
    """The migration that imported it was rolled back: it leaves history."""
    cur.execute("DELETE FROM executions WHERE execution_id = ?", (str(event.originator_id),))


HANDLERS = {
    ImportedExecution.Imported: on_imported,
    ImportedExecution.Retracted: on_retracted,
    Execution.Cancelled: on_cancelled,
    Execution.Started: on_started,
    Execution.ModelResolved: on_model_resolved,
    ResolvedStart: on_resolved_start,
    Execution.Progressed: on_progressed,
    Execution.Completed: on_completed,
    Execution.Failed: on_failed,
}

_COLUMNS = (
    "execution_id, tenant_id, agent_id, status, model_requested, model_resolved, provider,"
    " stream, prompt_tokens, completion_tokens, total_tokens, cost_usd, started_at,"
    " completed_at, duration_ms, error_type, error_message, result_json, kind, resource_id,"
    " state_id, retry_count, payload_kid, result_payload"
)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    """An execution as the API shows it: its result from the stored outcome, or the running
    state; with `input_json` selected, also its `input` (the request, without metadata)."""
    result = _result(row, _stored_outcome(row))
    erased = row["payload_kid"] is not None and (result or {}).get("metadata", {}).get(
        "payload_erased"
    )
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
        "error": {"type": row["error_type"], "message": opened_payload(row["error_message"])}
        if row["error_type"]
        else None,
        "resource_id": row["resource_id"],
        "state_id": row["state_id"],
        "retry_count": row["retry_count"] or 0,
    }
    if "input_json" in row:
        opened = _opened(row["input_json"])
        gone = opened is None and row["input_json"] is not None
        erased = erased or gone
        view["input"] = dict(shredding.ERASED_INPUT) if gone else json.loads(opened or "null")
    if result:
        view["response"] = result.get("response")
        view["metadata"] = result.get("metadata")
    if erased:
        view["payload"] = "erased"
    return view


def opened_payload(text: str | None) -> str | None:
    """A payload column's text, or the erased mark once its key is gone."""
    opened = _opened(text)
    return shredding.ERASED if opened is None and text is not None else opened


def _stored_outcome(row: dict[str, Any]) -> dict[str, Any] | None:
    """The stored outcome: with its payload put back, or marked erased once its key went."""
    stored = json.loads(_opened(row["result_json"]) or "null")
    if stored is None or row["result_payload"] is None:
        return stored
    opened = _opened(row["result_payload"])
    state = {"outcome": stored}
    if opened is None:
        shredding.erase("Execution.Completed", state)
    else:
        shredding.merge("Execution.Completed", state, json.loads(opened))
    return state["outcome"]


def _result(row: dict[str, Any], stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stored or "metadata" in stored:  # none yet, or a row folded before outcomes
        return stored
    outcome = Outcome.model_validate(stored)
    return result_document(
        row["execution_id"], row["agent_id"], row["status"], row["model_requested"], outcome
    )


def get_execution(db: ReadModelDB, tenant_id: str, execution_id: str) -> dict[str, Any] | None:
    rows = db.query(
        f"SELECT {_COLUMNS} FROM executions WHERE tenant_id = ? AND execution_id IN (?, ?)",
        (tenant_id, execution_id, _imported(tenant_id, execution_id)),
    )
    return _view(rows[0]) if rows else None


def get_many(db: ReadModelDB, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    """The tenant's executions of these ids (those found), by id."""
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" for _ in chunk)
        rows = db.query(
            f"SELECT {_COLUMNS} FROM executions WHERE tenant_id = ? AND execution_id IN ({marks})",
            (tenant_id, *chunk),
        )
        found.update({row["execution_id"]: _view(row) for row in rows})
    return found


def _imported(tenant_id: str, execution_id: str) -> str:
    """The id of the execution imported from a legacy execution of that id."""
    return legacy_import.imported_id(tenant_id, "execution", execution_id)


def list_executions(
    db: ReadModelDB,
    tenant_id: str,
    agent_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    before: float | None = None,
    kind: str | None = None,
    resource_id: str | None = None,
    execution_id: str | None = None,
    with_input: bool = False,
    ended_after: float | None = None,
    subject_ref: str | None = None,
    since: float | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before` (a started_at) pages backwards, `since` (a started_at) is
    the oldest start shown. `with_input` adds each
    execution's `input`. With `ended_after` (a completed_at): the executions that ended
    then or since, oldest end first (the cost feed)."""
    columns = f"{_COLUMNS}, input_json" if with_input else _COLUMNS
    sql = f"SELECT {columns} FROM executions WHERE tenant_id = ?"
    params: list[Any] = [tenant_id]
    if kind == AGENT_EXECUTION:
        sql += " AND (kind = ? OR kind IS NULL)"
        params.append(kind)
    elif kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    if execution_id is not None:  # or the legacy id it was imported from
        sql += " AND execution_id IN (?, ?)"
        params += [execution_id, _imported(tenant_id, execution_id)]
    for column, value in (
        ("agent_id", agent_id),
        ("status", status),
        ("resource_id", resource_id),
        ("subject_ref", subject_ref),
    ):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    if before is not None:
        sql += " AND started_at < ?"
        params.append(before)
    if since is not None:
        sql += " AND started_at >= ?"
        params.append(since)
    if ended_after is not None:
        sql += " AND status <> 'running' AND completed_at >= ?"
        sql += " ORDER BY completed_at, execution_id LIMIT ?"
        params.append(ended_after)
    else:
        sql += " ORDER BY started_at DESC LIMIT ?"
    params.append(limit)
    return [_view(row) for row in db.query(sql, params)]


def count_subject(db: ReadModelDB, tenant_id: str, subject_ref: str) -> int:
    """How many executions the tenant ran for one data subject."""
    rows = db.query(
        "SELECT COUNT(*) AS n FROM executions WHERE tenant_id = ? AND subject_ref = ?",
        (tenant_id, subject_ref),
    )
    return int(rows[0]["n"])
