"""MetricsActor: one per deployment; adds up every process's metric deltas and renders them."""

from __future__ import annotations

import time
from typing import Any

import ray

from actors import names
from actors.log_setup import configure_logging
from actors.settings import Settings
from domain.prometheus import Batch, Totals

QUIET_EVERY = 5  # a quiet process reports every this many `metrics_report_s` (actors.metrics)


def stale_after_s(settings: Settings) -> float:
    """How long the totals keep a silent process's gauges: three quiet reports' time."""
    return 3 * QUIET_EVERY * settings.metrics_report_s


@ray.remote
class MetricsActor:
    """The deployment's metric totals. Processes hand it deltas (`add`); it only ever adds,
    so a restarted process's counters continue where the cluster's left off. Async: one
    thread touches the totals."""

    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "metrics")
        self.totals = Totals(stale_s=stale_after_s(settings))

    async def add(self, source: str, batch: Batch) -> None:
        self.totals.add(source, batch, time.monotonic())

    async def goodbye(self, source: str, batch: Batch) -> None:
        """A process's last report: its deltas count, its gauges go."""
        self.totals.add(source, batch, time.monotonic())
        self.totals.forget(source)

    async def render(self) -> str:
        return self.totals.render(time.monotonic())


def handle(settings: Settings) -> Any:
    """The deployment's metrics actor (started on first use)."""
    return names.get_or_create(names.metrics_actor_name(settings), MetricsActor, settings)
