"""Feedback on an execution (a score in [0, 1], with an optional label and comment), and the
quality figures analytics derive from the scores.

A score is a user's, an application's or a judge's (`source`); each is a `FeedbackGiven`
event on the execution. The comment is payload (sealed with the execution's, erased with
its subject's); score, label and source stay in clear for analytics.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

SOURCES_SHOWN = ("user", "judge")  # the usual sources; any other short name is accepted
QUALITY_SUMS = ("score_sum", "score_count", "scored_executions", "scored_tokens",
                "scored_cost_usd", "judge_cost_usd", "judge_failures")  # fmt: skip


class FeedbackRequest(BaseModel):
    """`POST /api/v1/executions/{id}/feedback`: `true`/`false` count as 1 and 0."""

    model_config = ConfigDict(extra="forbid")

    score: float | bool = Field(description="in [0, 1]; true is 1, false is 0")
    label: str | None = Field(default=None, min_length=1, max_length=100)
    comment: str | None = Field(default=None, max_length=4000)
    source: str = Field(default="user", min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.:-]+$")

    @field_validator("score")
    @classmethod
    def _in_range(cls, value: float | bool) -> float:
        score = float(value)
        if not 0.0 <= score <= 1.0:
            raise ValueError("score must be in [0, 1] (or a boolean)")
        return score


def quality(sums: dict[str, Any]) -> dict[str, Any]:
    """The quality figures of summed roll-up rows.

    `mean_score` is over every score given; `per_1k_tokens` and `per_usd` divide it by what
    a scored execution used on average (tokens / 1,000, and cost in USD): quality per token
    and per dollar. `judge_cost_usd` is what judging them cost, apart from their own cost.
    """
    count, executions = sums["score_count"], sums["scored_executions"]
    mean = sums["score_sum"] / count if count else None
    tokens, cost = sums["scored_tokens"], sums["scored_cost_usd"]
    per_1k = mean * executions * 1000 / tokens if mean is not None and tokens else None
    per_usd = mean * executions / cost if mean is not None and cost else None
    return {
        "mean_score": None if mean is None else round(mean, 6),
        "scored": count,
        "scored_executions": executions,
        "per_1k_tokens": None if per_1k is None else round(per_1k, 6),
        "per_usd": None if per_usd is None else round(per_usd, 6),
        "judge_cost_usd": round(sums["judge_cost_usd"], 9),
        "judge_failures": sums["judge_failures"],
    }
