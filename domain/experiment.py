"""Replay experiments: a tenant's recorded executions run again on other models or agents,
side by side with what they answered.

An `Experiment` records its definition and the source executions chosen when it started,
then one `RunRecorded` per (source, variant) run, then how it ended; a runner that stops
half-way (its actor died) resumes from these events without repeating a recorded run. The
report (`report`) is computed from them and from the sources' own records.
"""

from __future__ import annotations

import math
from typing import Any, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.judging import JudgeSpec
from domain.schemas import Parameters

SOURCE_KINDS = ("agent_execution", "chat_completion")
MAX_RUNS = 1000  # sources × variants in one experiment
SHOWN_RUN = ("execution_id", "status", "model", "score", "error")  # a run, side by side


class Source(BaseModel):
    """Which recorded executions to replay: newest first within [from, to)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    agent_id: str | None = Field(default=None, max_length=100)
    start: str | None = Field(default=None, alias="from", description="ISO 8601 or unix seconds")
    end: str | None = Field(default=None, alias="to")
    status: Literal["completed", "failed", "cancelled"] = "completed"
    limit: int = Field(default=20, ge=1, le=200)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, (int, float)) else value


class Variant(BaseModel):
    """A model (virtual or concrete) or another agent to replay the sources on."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    agent_id: str | None = Field(default=None, min_length=1, max_length=100)
    parameters: Parameters = Parameters()

    @model_validator(mode="after")
    def _one_target(self) -> Variant:
        if (self.model is None) == (self.agent_id is None):
            raise ValueError(f"variant {self.name!r}: give either model or agent_id")
        return self


class ExperimentRequest(BaseModel):
    """`POST /api/v1/experiments`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    source: Source
    variants: list[Variant] = Field(min_length=1, max_length=5)
    judge: JudgeSpec | None = None
    budget_usd: float = Field(default=1.0, gt=0, le=1000, description="stop starting runs past it")
    concurrency: int = Field(default=2, ge=1, le=8)

    @model_validator(mode="after")
    def _distinct_names(self) -> ExperimentRequest:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError("variant names must differ")
        return self


def pick_sources(rows: list[dict[str, Any]], start: float, end: float, limit: int) -> list[str]:
    """The newest `limit` executions of history rows that started in [start, end) and may be
    replayed (agent executions and chat completions whose input was not erased)."""
    fit = [
        r for r in rows
        if r.get("kind") in SOURCE_KINDS and start <= r["started_at"] < end
        and r.get("payload") != "erased"
    ]  # fmt: skip
    fit.sort(key=lambda r: r["started_at"], reverse=True)
    return [r["execution_id"] for r in fit[:limit]]


def run_key(source_id: str, variant: str) -> str:
    return f"{source_id}/{variant}"


class Experiment(Aggregate):
    """One experiment of one tenant."""

    @event("Started")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        definition: dict[str, Any],
        sources: list[str],
        by: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.definition = definition
        self.sources = sources
        self.by = by
        self.runs: dict[str, dict[str, Any]] = {}
        self.status = "running"
        self.stopped: str | None = None
        self.spent_usd = 0.0

    def record_run(self, source_id: str, variant: str, run: dict[str, Any]) -> None:
        """A run ended: its execution id, status, output, usage, cost, duration, score."""
        self._run_recorded(self.tenant_id, source_id, variant, run)

    @event("RunRecorded")
    def _run_recorded(
        self, tenant_id: str, source_id: str, variant: str, run: dict[str, Any]
    ) -> None:
        self.runs[run_key(source_id, variant)] = {"source_id": source_id, "variant": variant,
                                                   **run}  # fmt: skip
        self.spent_usd += float(run.get("cost_usd") or 0.0) + float(run.get("judge_cost_usd") or 0)

    def end(self, status: str, stopped: str | None = None) -> None:
        """`completed` (every run, or `stopped` by the budget), `cancelled` or `failed`."""
        self._ended(self.tenant_id, status, stopped)

    @event("Ended")
    def _ended(self, tenant_id: str, status: str, stopped: str | None) -> None:
        self.status = status
        self.stopped = stopped

    def pending(self) -> list[tuple[str, dict[str, Any]]]:
        """(source id, variant) pairs not yet recorded, in order."""
        return [
            (source, variant) for source in self.sources for variant in self.definition["variants"]
            if run_key(source, variant["name"]) not in self.runs
        ]  # fmt: skip


def _nearest_rank(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile: the ⌈q·n⌉-th smallest value."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def state_of(experiment: Experiment) -> dict[str, Any]:
    """The experiment's recorded facts, as they cross to the API (no text of any run)."""
    return {
        "id": str(experiment.id),
        "name": experiment.definition["name"],
        "status": experiment.status,
        "stopped": experiment.stopped,
        "definition": experiment.definition,
        "sources": list(experiment.sources),
        "runs": list(experiment.runs.values()),
        "spent_usd": round(experiment.spent_usd, 9),
        "created_at": experiment.created_on.isoformat(),
        "by": experiment.by,
    }


def run_ids(state: dict[str, Any]) -> list[str]:
    """The executions a report reads from history: the sources and every run."""
    return [*state["sources"], *(r["execution_id"] for r in state["runs"] if r["execution_id"])]


def report(state: dict[str, Any], records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The experiment as the API shows it: per variant its figures (from its runs' recorded
    facts), per source the original output beside each variant's (from `records`, the
    executions as history shows them: an erased one shows its erased marks)."""
    names = [v["name"] for v in state["definition"]["variants"]]
    runs = state["runs"]
    variants = []
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        ok = [r for r in mine if r["status"] == "completed"]
        durations = [r["duration_ms"] for r in mine if r.get("duration_ms") is not None]
        scores = [r["score"] for r in mine if r.get("score") is not None]
        tokens = {k: sum(int(r["usage"].get(k) or 0) for r in mine)
                  for k in ("prompt_tokens", "completion_tokens", "total_tokens")}  # fmt: skip
        variants.append({
            "name": name,
            "runs": len(mine),
            "succeeded": len(ok),
            "success_rate": round(len(ok) / len(mine), 6) if mine else None,
            "latency_ms": {"p50": _nearest_rank(durations, 0.5),
                           "p95": _nearest_rank(durations, 0.95)},
            **tokens,
            "cost_usd": round(sum(float(r.get("cost_usd") or 0) for r in mine), 9),
            "mean_score": round(sum(scores) / len(scores), 6) if scores else None,
            "scored": len(scores),
            "judge_cost_usd": round(sum(float(r.get("judge_cost_usd") or 0) for r in mine), 9),
        })  # fmt: skip
    by_run = {(r["source_id"], r["variant"]): r for r in runs}
    by_source = []
    for source in state["sources"]:
        side = {}
        for name in names:
            run = by_run.get((source, name))
            if run is not None:
                shown = {k: run.get(k) for k in SHOWN_RUN}
                side[name] = {**shown, "output": _output(records.get(run["execution_id"] or ""))}
        original = records.get(source) or {}
        by_source.append({
            "execution_id": source,
            "original": {"status": original.get("status"),
                         "model": original.get("model_resolved"),
                         "output": _output(original), "usage": original.get("usage")},
            "variants": side,
        })  # fmt: skip
    return {
        **{k: state[k] for k in ("id", "name", "status", "stopped", "created_at", "by")},
        "progress": {"runs": len(runs), "of": len(state["sources"]) * len(names)},
        "spent_usd": state["spent_usd"],
        "budget_usd": state["definition"]["budget_usd"],
        "definition": state["definition"],
        "variants": variants,
        "sources": by_source,
    }


def _output(record: dict[str, Any] | None) -> str | None:
    return ((record or {}).get("response") or {}).get("content")
