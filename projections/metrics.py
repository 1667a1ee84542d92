"""Metrics read models: a fact row per execution, and hourly and daily roll-ups of them.

`execution_facts` follows each execution (started, routed, its tool calls, its end);
when it ends, its figures are added to the roll-up row of its tenant, agent, kind, resolved
model, provider, status and error type for the hour (`usage_hourly`) and the day
(`usage_daily`) in which it started. Durations and times to first content are kept as
mergeable histograms (`domain.histogram`), so any range and grouping of roll-ups answers
percentiles. On PostgreSQL the tables live in the `analytics` schema (see
docs/analytics.md); every row has its tenant.
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, date, datetime
from typing import Any

from domain import histogram
from domain.execution import Execution
from domain.feedback import QUALITY_SUMS
from domain.histogram import Histogram
from domain.results import Attempt
from projections.db import Batch, Cursor
from projections.decoded import ResolvedStart, outcome_of

SCHEMA = "analytics"
NONE = ""  # a group key the execution has none of (no agent, never routed, no error)

FACTS_DDL = """CREATE TABLE IF NOT EXISTS execution_facts (
    execution_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    stream BOOLEAN NOT NULL,
    status TEXT NOT NULL,
    model_requested TEXT,
    model_resolved TEXT,
    provider TEXT,
    error_type TEXT,
    started_at {TIMESTAMP} NOT NULL,
    ended_at {TIMESTAMP},
    duration_ms DOUBLE PRECISION,
    ttft_ms DOUBLE PRECISION,
    prompt_tokens BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    fallbacks INTEGER NOT NULL DEFAULT 0,
    tool_calls INTEGER NOT NULL DEFAULT 0,
    tool_failures INTEGER NOT NULL DEFAULT 0,
    score_count INTEGER NOT NULL DEFAULT 0
)"""

KEYS = ("agent_id", "kind", "model", "provider", "status", "error_type")
SUMS = (
    "executions", "succeeded", "failed", "cancelled", "streamed", "prompt_tokens",
    "completion_tokens", "cost_usd", "duration_ms_sum", "duration_count", "ttft_ms_sum",
    "ttft_count", "retries", "fallbacks", "tool_calls", "tool_failures", "cache_hits",
    "cost_saved_usd", "guardrail_flags", "guardrail_redactions", "guardrail_blocks",
    *QUALITY_SUMS,
)  # fmt: skip
# added after the roll-up tables were first made (each is also in their DDL)
LATER_SUMS = (
    ("cache_hits", "BIGINT NOT NULL DEFAULT 0"),
    ("cost_saved_usd", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
    ("guardrail_flags", "BIGINT NOT NULL DEFAULT 0"),
    ("guardrail_redactions", "BIGINT NOT NULL DEFAULT 0"),
    ("guardrail_blocks", "BIGINT NOT NULL DEFAULT 0"),
    ("score_sum", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
    ("score_count", "BIGINT NOT NULL DEFAULT 0"),
    ("scored_executions", "BIGINT NOT NULL DEFAULT 0"),
    ("scored_tokens", "BIGINT NOT NULL DEFAULT 0"),
    ("scored_cost_usd", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
    ("judge_cost_usd", "DOUBLE PRECISION NOT NULL DEFAULT 0"),
    ("judge_failures", "BIGINT NOT NULL DEFAULT 0"),
)
HISTOGRAMS = ("duration_hist", "ttft_hist")


def _rollup_ddl(table: str, period: str, kind: str) -> str:
    later = "\n    ".join(f"{name} {sql}," for name, sql in LATER_SUMS)
    return f"""CREATE TABLE IF NOT EXISTS {table} (
    tenant_id TEXT NOT NULL,
    {period} {kind} NOT NULL,
    agent_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    status TEXT NOT NULL,
    error_type TEXT NOT NULL,
    executions BIGINT NOT NULL,
    succeeded BIGINT NOT NULL,
    failed BIGINT NOT NULL,
    cancelled BIGINT NOT NULL,
    streamed BIGINT NOT NULL,
    prompt_tokens BIGINT NOT NULL,
    completion_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    duration_ms_sum DOUBLE PRECISION NOT NULL,
    duration_count BIGINT NOT NULL,
    ttft_ms_sum DOUBLE PRECISION NOT NULL,
    ttft_count BIGINT NOT NULL,
    retries BIGINT NOT NULL,
    fallbacks BIGINT NOT NULL,
    tool_calls BIGINT NOT NULL,
    tool_failures BIGINT NOT NULL,
    {later}
    duration_hist TEXT NOT NULL,
    ttft_hist TEXT NOT NULL,
    PRIMARY KEY (tenant_id, {period}, agent_id, kind, model, provider, status, error_type)
)"""


ROLLUPS = {"usage_hourly": "hour", "usage_daily": "day"}
DDL = (
    FACTS_DDL,
    "CREATE INDEX IF NOT EXISTS execution_facts_by_tenant ON execution_facts"
    " (tenant_id, started_at)",
    _rollup_ddl("usage_hourly", "hour", "{TIMESTAMP}"),
    _rollup_ddl("usage_daily", "day", "{DATE}"),
)
TABLES = ("execution_facts", *ROLLUPS)
COLUMNS = (
    *((table, name, sql) for table in ROLLUPS for name, sql in LATER_SUMS),
    ("execution_facts", "score_count", "INTEGER NOT NULL DEFAULT 0"),
)

_ROLLUP_COLUMNS = {
    "tenant_id": "the tenant (an analyst's role sees its own only)",
    "agent_id": "the agent ('' for a chat completion that named a model)",
    "kind": "agent_execution or chat_completion",
    "model": "the model that answered, or was routed to ('' when never routed)",
    "provider": "its provider ('' when never routed)",
    "status": "completed, failed or cancelled",
    "error_type": "the stable error type of a failure ('' otherwise)",
    "executions": "executions that ended, started in this period",
    "succeeded": "of them completed",
    "failed": "of them failed",
    "cancelled": "of them cancelled",
    "streamed": "of them streamed",
    "prompt_tokens": "input tokens, as the providers counted them",
    "completion_tokens": "output tokens, as the providers counted them",
    "cost_usd": "cost in USD from real token counts and the catalog prices",
    "duration_ms_sum": "sum of durations (ms); mean = duration_ms_sum / duration_count",
    "duration_count": "executions with a duration",
    "ttft_ms_sum": "sum of times to first content (ms), streamed executions",
    "ttft_count": "executions with a time to first content (streamed ones)",
    "retries": "attempts that retried the same model after a failed attempt",
    "fallbacks": "attempts that moved to another model after a failed attempt",
    "tool_calls": "tool calls the model made",
    "tool_failures": "tool calls that answered with an error",
    "cache_hits": "executions answered from the response cache (no provider call)",
    "cost_saved_usd": "what the cache hits' answers cost when they were made, in USD",
    "guardrail_flags": "guardrail checks that fired with action flag",
    "guardrail_redactions": "guardrail checks that fired with action redact",
    "guardrail_blocks": "guardrail checks that blocked the execution",
    "score_sum": "sum of the feedback scores (each in [0, 1]) given on these executions",
    "score_count": "feedback scores given (users', applications' and judges')",
    "scored_executions": "executions with at least one score",
    "scored_tokens": "tokens (prompt + completion) of the scored executions",
    "scored_cost_usd": "cost in USD of the scored executions",
    "judge_cost_usd": "what judging these executions cost, in USD (apart from cost_usd)",
    "judge_failures": "judge calls that gave no verdict (a malformed reply, a failed call)",
    "duration_hist": "duration histogram: JSON {bucket: count}; bucket i holds "
    "(1.1^(i-1), 1.1^i] ms, read as 2*1.1^i/2.1 (within 4.8 percent)",
    "ttft_hist": "time-to-first-content histogram, same buckets as duration_hist",
}
COMMENTS = {
    "execution_facts": (
        "One row per execution: what it was, how it ended, what it cost.",
        {
            "started_at": "when it started (UTC)",
            "ended_at": "when it ended (UTC); null while running",
            "duration_ms": "from its start to its end, in the tenant's runtime",
            "ttft_ms": "streamed: from its start to the first content sent",
            "attempts": "provider calls made (retries, fallbacks and tool turns included)",
            "score_count": "feedback scores given on it",
            **{
                k: v
                for k, v in _ROLLUP_COLUMNS.items()
                if k
                in (
                    "tenant_id",
                    "agent_id",
                    "kind",
                    "status",
                    "error_type",
                    "prompt_tokens",
                    "completion_tokens",
                    "cost_usd",
                    "retries",
                    "fallbacks",
                    "tool_calls",
                    "tool_failures",
                )
            },
        },
    ),
    "usage_hourly": (
        "Ended executions rolled up by the UTC hour they started in and their group keys.",
        {"hour": "the start of the UTC hour", **_ROLLUP_COLUMNS},
    ),
    "usage_daily": (
        "Ended executions rolled up by the UTC day they started in and their group keys.",
        {"day": "the UTC day", **_ROLLUP_COLUMNS},
    ),
}


def hour_of(ts: float) -> str:
    """The start of the UTC hour holding unix time `ts`, as stored and shown."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:00:00Z")


def day_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def instant(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def shown(value: Any) -> Any:
    """A stored time as the API shows it: PostgreSQL's typed values in the stored text form."""
    if isinstance(value, datetime):
        return instant(value.timestamp())
    if isinstance(value, date):
        return value.isoformat()
    return value


def hour_text(value: Any) -> str:
    """A stored `hour` as the API shows it."""
    return hour_of(value.timestamp()) if isinstance(value, datetime) else str(value)


def unix(value: Any) -> float:
    """A stored instant as unix seconds (PostgreSQL gives a datetime, SQLite the text)."""
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(value).timestamp()  # `instant`'s text, its "Z" read as UTC


def retries_and_fallbacks(attempts: list[Attempt]) -> tuple[int, int]:
    """After a failed attempt, the next is a retry (same model) or a fallback (another);
    an attempt after a successful one is the next turn of a tool loop, neither."""
    retries = fallbacks = 0
    for before, after in itertools.pairwise(attempts):
        if before.error is None:
            continue
        if after.model == before.model:
            retries += 1
        else:
            fallbacks += 1
    return retries, fallbacks


def on_started(cur: Cursor, event: Any) -> None:
    _insert(cur, event, None)


def on_resolved_start(cur: Cursor, pair: ResolvedStart) -> None:
    _insert(cur, pair.started, pair.resolved)


def _insert(cur: Cursor, event: Any, resolved: Any) -> None:
    """The execution's fact row as its Started event (and, if given, its ModelResolved)
    says."""
    model = resolved.model if resolved is not None else None
    provider = resolved.provider if resolved is not None else None
    row = {
        "agent_id": event.agent_id or NONE,
        "kind": getattr(event, "kind", "agent_execution"),
        "stream": bool(event.stream),
        "started_at": instant(event.timestamp.timestamp()),
    }
    cur.execute(
        "INSERT INTO execution_facts (execution_id, tenant_id, agent_id, kind, stream, status,"
        " model_requested, model_resolved, provider, started_at)"
        " VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?, ?) ON CONFLICT (execution_id) DO NOTHING",
        (str(event.originator_id), event.tenant_id, row["agent_id"], row["kind"], row["stream"],
         event.model_requested, model, provider, row["started_at"]),
    )  # fmt: skip
    rows = getattr(cur, "rows", None)
    if rows is not None:  # a Started event is folded once: this is the row as written
        rows[_fact_key(event)] = {
            **row, "status": "running", "model_resolved": model, "provider": provider,
            "tool_calls": 0, "tool_failures": 0,
        }  # fmt: skip


def on_model_resolved(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE execution_facts SET model_resolved = ?, provider = ? WHERE execution_id = ?",
        (event.model, event.provider, str(event.originator_id)),
    )
    row = _batch_copy(cur, event)
    if row is not None:
        row.update(model_resolved=event.model, provider=event.provider)


def on_tool_called(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE execution_facts SET tool_calls = tool_calls + 1 WHERE execution_id = ?",
        (str(event.originator_id),),
    )
    row = _batch_copy(cur, event)
    if row is not None:
        row["tool_calls"] += 1


def on_tool_result(cur: Cursor, event: Any) -> None:
    if event.error is not None:
        cur.execute(
            "UPDATE execution_facts SET tool_failures = tool_failures + 1 WHERE execution_id = ?",
            (str(event.originator_id),),
        )
        row = _batch_copy(cur, event)
        if row is not None:
            row["tool_failures"] += 1


def _fact_key(event: Any) -> tuple[str, str]:
    return ("execution_facts", str(event.originator_id))


def _batch_copy(cur: Cursor, event: Any) -> dict[str, Any] | None:
    """The batch's copy of the execution's fact row, if it holds one (an update to the row
    is mirrored in it)."""
    return getattr(cur, "rows", {}).get(_fact_key(event))


def _facts(cur: Cursor, event: Any) -> dict[str, Any] | None:
    """The execution's fact row: the batch's copy (a start folded in the same batch needs no
    query), else read (and kept for the rest of the batch)."""
    rows = getattr(cur, "rows", None)
    key = _fact_key(event)
    if rows is not None and key in rows:
        return rows[key]
    row = cur.execute(
        "SELECT agent_id, kind, stream, status, model_resolved, provider, started_at,"
        " tool_calls, tool_failures FROM execution_facts WHERE execution_id = ?",
        (key[1],),
    ).fetchone()
    if row is None:
        return None
    facts = dict(row)
    if rows is not None:
        rows[key] = facts
    return facts


def _ended(cur: Cursor, event: Any, status: str) -> None:
    """Close the execution's fact row and add it to its hour's and day's roll-ups."""
    execution_id = str(event.originator_id)
    facts = _facts(cur, event)
    if facts is None:  # its start was erased, or never recorded
        return
    if facts["status"] != "running":  # one end per execution; never counted twice
        return
    outcome = outcome_of(event)
    attempts = outcome.attempts or []
    retries, fallbacks = retries_and_fallbacks(attempts)
    model = outcome.model_resolved or facts["model_resolved"]
    provider = outcome.provider or facts["provider"]
    error_type = outcome.error.type if outcome.error else None
    cur.execute(
        "UPDATE execution_facts SET status = ?, model_resolved = ?, provider = ?,"
        " error_type = ?, ended_at = ?, duration_ms = ?, ttft_ms = ?, prompt_tokens = ?,"
        " completion_tokens = ?, cost_usd = ?, attempts = ?, retries = ?, fallbacks = ?"
        " WHERE execution_id = ?",
        (
            status, model, provider, error_type, instant(event.timestamp.timestamp()),
            outcome.duration_ms, outcome.ttft_ms, outcome.usage.prompt_tokens,
            outcome.usage.completion_tokens, outcome.cost_usd, len(attempts), retries,
            fallbacks, execution_id,
        ),
    )  # fmt: skip
    facts.update(status=status, model_resolved=model, provider=provider)
    started = unix(facts["started_at"])
    keys = {
        "agent_id": facts["agent_id"],
        "kind": facts["kind"],
        "model": model or NONE,
        "provider": provider or NONE,
        "status": status,
        "error_type": error_type or NONE,
    }
    figures = {
        "executions": 1,
        "succeeded": int(status == "completed"),
        "failed": int(status == "failed"),
        "cancelled": int(status == "cancelled"),
        "streamed": int(bool(facts["stream"])),
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "cost_usd": outcome.cost_usd,
        "duration_ms_sum": outcome.duration_ms or 0.0,
        "duration_count": int(outcome.duration_ms is not None),
        "ttft_ms_sum": outcome.ttft_ms or 0.0,
        "ttft_count": int(outcome.ttft_ms is not None),
        "retries": retries,
        "fallbacks": fallbacks,
        "tool_calls": facts["tool_calls"],
        "tool_failures": facts["tool_failures"],
        "cache_hits": int(bool(outcome.cache_hit)),
        "cost_saved_usd": outcome.cost_saved_usd or 0.0,
        **_guardrail_counts(outcome.guardrails or []),
        **dict.fromkeys(QUALITY_SUMS, 0),  # scores come later (`on_feedback`)
    }
    hists = {
        "duration_hist": histogram.of([outcome.duration_ms] if outcome.duration_ms is not None
                                      else []),
        "ttft_hist": histogram.of([outcome.ttft_ms] if outcome.ttft_ms is not None else []),
    }  # fmt: skip
    for table, period, when in (("usage_hourly", "hour", hour_of(started)),
                                ("usage_daily", "day", day_of(started))):  # fmt: skip
        _gather(cur, (table, period, event.tenant_id, when, *(keys[k] for k in KEYS)),
                figures, hists)  # fmt: skip


def _guardrail_counts(decisions: list[dict[str, Any]]) -> dict[str, int]:
    """The checks that fired, by action."""
    actions = [d.get("action") for d in decisions]
    return {
        "guardrail_flags": actions.count("flag"),
        "guardrail_redactions": actions.count("redact"),
        "guardrail_blocks": actions.count("block"),
    }


def _gather(
    batch: Any, key: tuple[str, ...], figures: dict[str, float], hists: dict[str, Histogram]
) -> None:
    """Add one execution's figures to its roll-up row's share of this batch (a plain
    cursor, outside a batch, writes them at once)."""
    pending = getattr(batch, "pending", None)
    if pending is None:
        _add(batch, key, figures, hists)
        return
    if key not in pending:
        pending[key] = ({s: 0 for s in SUMS}, {h: Histogram() for h in HISTOGRAMS})
    sums, merged = pending[key]
    for s in SUMS:
        sums[s] += figures[s]
    for h in HISTOGRAMS:
        histogram.merge(merged[h], hists[h])


def flush(batch: Batch) -> None:
    """Write the batch's roll-up shares: per table one read of the rows they add to (in
    chunks of `READ_CHUNK`), then one write per row."""
    by_table: dict[str, list[tuple[str, ...]]] = {}
    for key in batch.pending:
        by_table.setdefault(key[0], []).append(key)
    for keys in by_table.values():
        for start in range(0, len(keys), READ_CHUNK):
            chunk = keys[start : start + READ_CHUNK]
            stored = _stored(batch, chunk)
            for key in chunk:
                _write(batch, key, *batch.pending[key], stored.get(key))
    batch.pending.clear()


READ_CHUNK = 100  # roll-up rows read by one query


def _where(period: str) -> str:
    return f"tenant_id = ? AND {period} = ? AND " + " AND ".join(f"{k} = ?" for k in KEYS)


def _stored(cur: Cursor, keys: list[tuple[str, ...]]) -> dict[tuple[str, ...], dict[str, Any]]:
    """The stored roll-up rows of `keys` (all of one table), by key."""
    table, period = keys[0][:2]
    rows = cur.execute(
        f"SELECT tenant_id, {period}, {', '.join(KEYS)}, {', '.join(HISTOGRAMS)} FROM {table}"
        " WHERE " + " OR ".join([f"({_where(period)})"] * len(keys)),
        [value for key in keys for value in key[2:]],
    ).fetchall()
    shown_as = hour_text if period == "hour" else shown
    return {
        (table, period, row["tenant_id"], shown_as(row[period]), *(row[k] for k in KEYS)): dict(row)
        for row in rows
    }


def _add(
    cur: Cursor,
    key: tuple[str, ...],
    figures: dict[str, float],
    hists: dict[str, Histogram],
) -> None:
    """Add figures to a roll-up row (made if it is the first); `key` is the table, its period
    column, then the row's key values (tenant, period, KEYS)."""
    _write(cur, key, figures, hists, _stored(cur, [key]).get(key))


def _write(
    cur: Cursor,
    key: tuple[str, ...],
    figures: dict[str, float],
    hists: dict[str, Histogram],
    stored: dict[str, Any] | None,
) -> None:
    """Add figures to the roll-up row of `key`, as `stored` now (None: make it)."""
    table, period, *key_values = key
    if stored is None:
        columns = ("tenant_id", period, *KEYS, *SUMS, *HISTOGRAMS)
        values = (*key_values, *(figures[s] for s in SUMS),
                  *(histogram.dumps(hists[h]) for h in HISTOGRAMS))  # fmt: skip
        cur.execute(
            f"INSERT INTO {table} ({', '.join(columns)})"
            f" VALUES ({', '.join('?' for _ in columns)})",
            values,
        )
        return
    merged = [
        histogram.dumps(histogram.merge(histogram.loads(stored[h]), hists[h])) for h in HISTOGRAMS
    ]
    sets = ", ".join([f"{s} = {s} + ?" for s in SUMS] + [f"{h} = ?" for h in HISTOGRAMS])
    cur.execute(
        f"UPDATE {table} SET {sets} WHERE {_where(period)}",
        (*(figures[s] for s in SUMS), *merged, *key_values),
    )


def _quality(cur: Cursor, event: Any, figures: dict[str, float]) -> None:
    """Add quality figures to the roll-up rows the execution was counted in (scores
    arrive after its end); nothing for an execution whose facts are gone or not ended."""
    row = cur.execute(
        "SELECT agent_id, kind, status, model_resolved, provider, error_type, started_at,"
        " prompt_tokens, completion_tokens, cost_usd, score_count FROM execution_facts"
        " WHERE execution_id = ?",
        (str(event.originator_id),),
    ).fetchone()
    if row is None or row["status"] == "running":
        return
    facts = dict(row)
    judge = getattr(event, "judge", None) or {}
    sums = {**dict.fromkeys(SUMS, 0), **figures,
            "judge_cost_usd": float(judge.get("cost_usd") or 0.0)}  # fmt: skip
    if figures.get("score_count"):
        if facts["score_count"] == 0:
            sums["scored_executions"] = 1
            sums["scored_tokens"] = facts["prompt_tokens"] + facts["completion_tokens"]
            sums["scored_cost_usd"] = facts["cost_usd"]
        cur.execute(
            "UPDATE execution_facts SET score_count = score_count + 1 WHERE execution_id = ?",
            (str(event.originator_id),),
        )
    keys = (facts["agent_id"], facts["kind"], facts["model_resolved"] or NONE,
            facts["provider"] or NONE, facts["status"], facts["error_type"] or NONE)  # fmt: skip
    started = unix(facts["started_at"])
    empty = {h: Histogram() for h in HISTOGRAMS}
    for table, period, when in (("usage_hourly", "hour", hour_of(started)),
                                ("usage_daily", "day", day_of(started))):  # fmt: skip
        _gather(cur, (table, period, event.tenant_id, when, *keys), sums, empty)


def on_feedback(cur: Cursor, event: Any) -> None:
    _quality(cur, event, {"score_sum": float(event.score), "score_count": 1})


def on_judge_failed(cur: Cursor, event: Any) -> None:
    _quality(cur, event, {"judge_failures": 1})


HANDLERS = {
    Execution.FeedbackGiven: on_feedback,
    Execution.JudgeFailed: on_judge_failed,
    Execution.Started: on_started,
    Execution.ModelResolved: on_model_resolved,
    ResolvedStart: on_resolved_start,
    Execution.ToolCalled: on_tool_called,
    Execution.ToolResultRecorded: on_tool_result,
    Execution.Completed: functools.partial(_ended, status="completed"),
    Execution.Failed: functools.partial(_ended, status="failed"),
    Execution.Cancelled: functools.partial(_ended, status="cancelled"),
}
