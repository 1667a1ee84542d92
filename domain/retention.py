"""A tenant's retention: how long execution payloads and metrics are kept, and what a
sweep at a given time removes."""

from __future__ import annotations

import math

from eventsourcing.domain import Aggregate, event
from pydantic import BaseModel, Field, model_validator

from domain.shredding import BUCKET_S

DAY_S = 86400


class Retention(BaseModel):
    """`payload_days`: prompts, answers and tool data are kept that many days (their keys
    then destroyed); `metrics_days`: the executions themselves (counts, tokens, cost) that
    many days, or forever when None."""

    model_config = {"extra": "forbid"}

    payload_days: int = Field(ge=1, le=36500)
    metrics_days: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _metrics_outlive_payloads(self) -> Retention:
        if self.metrics_days is not None and self.metrics_days < self.payload_days:
            raise ValueError("metrics_days must be at least payload_days")
        return self


def payload_keys_before(now: float, payload_days: int) -> int:
    """Payload keys of hours (buckets) before this have expired: each hour's payload is
    kept until that hour has ended `payload_days` ago (at least N days, at most N days and
    an hour)."""
    return math.floor(now - payload_days * DAY_S) - BUCKET_S + 1


def executions_before(now: float, metrics_days: int) -> float:
    """Executions started before this (a Unix time) have expired."""
    return now - metrics_days * DAY_S


class RetentionSweep(Aggregate):
    """One sweep of one tenant's expired data: when, up to where, and what went."""

    @event("Recorded")
    def __init__(
        self,
        tenant_id: str,
        payload_keys_before: int | None,
        payload_keys: int,
        executions_before: float | None,
        executions: int,
        by: str,
    ) -> None:
        self.tenant_id = tenant_id
