"""What analysts ask of the metrics read models: usage, model comparison, error patterns.

Every answer is computed from `usage_hourly` (figures) or `execution_facts` (error
examples) of one tenant, for the hours that start in [from, to): a range resolves to whole
hours, `from` rounded down and `to` rounded up. Only ended executions are counted.
"""

from __future__ import annotations

import math
from typing import Any

from domain import histogram
from domain.feedback import quality
from projections.db import ReadModelDB
from projections.metrics import HISTOGRAMS, NONE, SUMS, hour_of, hour_text, instant, shown

# group_by names → the key each row shows
GROUPS = {
    "day": "day",
    "hour": "hour",
    "agent": "agent_id",
    "model": "model",
    "provider": "provider",
    "status": "status",
    "kind": "kind",
}
PERCENTILES = (("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99))
EXAMPLES = 5  # execution ids shown per error pattern


def hour_range(start: float, end: float) -> tuple[float, float]:
    """[from, to) as the start of the first hour included and of the first hour after."""
    return math.floor(start / 3600) * 3600.0, math.ceil(end / 3600) * 3600.0


def _rollups(
    db: ReadModelDB, tenant_id: str, start: float, end: float, filters: dict[str, str | None]
) -> list[dict[str, Any]]:
    first, after = hour_range(start, end)
    sql = "SELECT * FROM usage_hourly WHERE tenant_id = ? AND hour >= ? AND hour < ?"
    params: list[Any] = [tenant_id, hour_of(first), hour_of(after)]
    for column, value in filters.items():
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    return db.query(sql, params)


def _key(row: dict[str, Any], group: str) -> Any:
    if group == "hour":
        return hour_text(row["hour"])
    if group == "day":
        return hour_text(row["hour"])[:10]
    value = row[GROUPS[group]]
    return None if value == NONE else value


def figures(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure of a set of roll-up rows (merged sums and histograms)."""
    sums = {s: sum(r[s] for r in rows) for s in SUMS}
    hists = {h: histogram.Histogram() for h in HISTOGRAMS}
    errors: dict[str, int] = {}
    for row in rows:
        for h in HISTOGRAMS:
            histogram.merge(hists[h], histogram.loads(row[h]))
        if row["error_type"] != NONE:
            errors[row["error_type"]] = errors.get(row["error_type"], 0) + row["executions"]
    executions, succeeded = sums["executions"], sums["succeeded"]
    tokens = sums["prompt_tokens"] + sums["completion_tokens"]
    return {
        "executions": executions,
        "succeeded": succeeded,
        "failed": sums["failed"],
        "cancelled": sums["cancelled"],
        "streamed": sums["streamed"],
        "success_rate": round(succeeded / executions, 6) if executions else None,
        "duration_ms": _distribution(hists["duration_hist"], sums, "duration"),
        "ttft_ms": _distribution(hists["ttft_hist"], sums, "ttft"),
        "prompt_tokens": sums["prompt_tokens"],
        "completion_tokens": sums["completion_tokens"],
        "total_tokens": tokens,
        "cost_usd": round(sums["cost_usd"], 9),
        "cost_per_success_usd": round(sums["cost_usd"] / succeeded, 9) if succeeded else None,
        "tokens_per_success": round(tokens / succeeded, 3) if succeeded else None,
        "error_types": dict(sorted(errors.items())),
        "retries": sums["retries"],
        "fallbacks": sums["fallbacks"],
        "tool_calls": sums["tool_calls"],
        "tool_failures": sums["tool_failures"],
        "cache": {
            "hits": sums["cache_hits"],
            "hit_rate": round(sums["cache_hits"] / executions, 6) if executions else None,
            "cost_saved_usd": round(sums["cost_saved_usd"], 9),
        },
        "guardrails": {
            "flags": sums["guardrail_flags"],
            "redactions": sums["guardrail_redactions"],
            "blocks": sums["guardrail_blocks"],
        },
        "quality": quality(sums),
    }


def _distribution(
    counts: histogram.Histogram, sums: dict[str, Any], name: str
) -> dict[str, float | None]:
    count = sums[f"{name}_count"]
    out = {label: histogram.quantile(counts, q) for label, q in PERCENTILES}
    out["mean"] = round(sums[f"{name}_ms_sum"] / count, 3) if count else None
    return out


def usage(
    db: ReadModelDB,
    tenant_id: str,
    start: float,
    end: float,
    group_by: list[str],
    filters: dict[str, str | None],
) -> list[dict[str, Any]]:
    """One row per group (ordered by its keys), each with every figure."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in _rollups(db, tenant_id, start, end, filters):
        groups.setdefault(tuple(_key(row, g) for g in group_by), []).append(row)
    out = []
    for key in sorted(groups, key=lambda k: tuple((v is None, v or "") for v in k)):
        out.append({**{GROUPS[g]: v for g, v in zip(group_by, key, strict=True)},
                    **figures(groups[key])})  # fmt: skip
    return out


def models(db: ReadModelDB, tenant_id: str, start: float, end: float) -> list[dict[str, Any]]:
    """Each resolved model the tenant used, side by side; most used first."""
    rows = [r for r in usage(db, tenant_id, start, end, ["model", "provider"], {}) if r["model"]]
    return sorted(rows, key=lambda r: (-r["executions"], r["model"]))


def errors(db: ReadModelDB, tenant_id: str, start: float, end: float) -> list[dict[str, Any]]:
    """Failures by error type, provider and model: how many, when first and last seen, and
    the newest few execution ids; most frequent first."""
    first, after = (instant(t) for t in hour_range(start, end))
    where = "tenant_id = ? AND status = 'failed' AND started_at >= ? AND started_at < ?"
    patterns = db.query(
        "SELECT error_type, provider, model_resolved, COUNT(*) AS count,"
        " MIN(ended_at) AS first_seen, MAX(ended_at) AS last_seen"
        f" FROM execution_facts WHERE {where}"
        " GROUP BY error_type, provider, model_resolved",
        (tenant_id, first, after),
    )
    out = []
    for p in patterns:
        same = " AND ".join(
            f"{column} IS NULL" if p[column] is None else f"{column} = ?"
            for column in ("error_type", "provider", "model_resolved")
        )
        values = [p[c] for c in ("error_type", "provider", "model_resolved") if p[c] is not None]
        examples = db.query(
            f"SELECT execution_id FROM execution_facts WHERE {where} AND {same}"
            " ORDER BY ended_at DESC LIMIT ?",
            (tenant_id, first, after, *values, EXAMPLES),
        )
        out.append({
            "error_type": p["error_type"],
            "provider": p["provider"],
            "model": p["model_resolved"],
            "count": p["count"],
            "first_seen": shown(p["first_seen"]),
            "last_seen": shown(p["last_seen"]),
            "execution_ids": [e["execution_id"] for e in examples],
        })  # fmt: skip
    return sorted(out, key=lambda e: (-e["count"], e["error_type"] or ""))
