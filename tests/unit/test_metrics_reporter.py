"""A process's metrics reporter: what it hands over, and when it stays quiet (no Ray)."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from actors import metrics, metrics_actor
from actors.settings import Settings
from domain.prometheus import Batch, Recorder


class FakeActor:
    """Stands in for the metrics actor's handle: keeps every batch `add` was given."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        outer = self

        class Add:
            @staticmethod
            def remote(source: str, batch: Batch) -> Any:
                outer.batches.append(batch)
                done: Future[None] = Future()
                done.set_result(None)
                return type("Ref", (), {"future": lambda self: done})()

        self.add = Add


@pytest.fixture
def reporter(monkeypatch: pytest.MonkeyPatch) -> tuple[metrics.Reporter, FakeActor, list[float]]:
    monkeypatch.setattr(metrics, "RECORDER", Recorder())  # none of earlier tests' values
    actor, now = FakeActor(), [100.0]
    rep = metrics.Reporter(Settings(metrics_report_s=1.0), "test")
    monkeypatch.setattr(rep, "_actor", lambda: actor)
    rep.clock = lambda: now[0]
    return rep, actor, now


def test_counts_are_handed_over_once(reporter: Any) -> None:
    rep, actor, _ = reporter
    metrics.RECORDER.inc("cb_executions_total", ("agent_execution", "completed"), tenant="t")
    assert rep.report(idle_skip=True) is not None
    assert rep.report() is not None  # asked for (a scrape): sent even with nothing new
    counted = [b.counters for b in actor.batches]
    assert counted == [{("cb_executions_total", ("agent_execution", "completed", "t")): 1.0}, {}]


def test_an_idle_process_reports_only_to_keep_its_gauges_fresh(reporter: Any) -> None:
    rep, actor, now = reporter
    metrics.RECORDER.set("cb_tenant_actors_alive", 1)
    assert rep.report(idle_skip=True) is not None
    now[0] += 1.0
    assert rep.report(idle_skip=True) is None  # nothing new: no call
    now[0] += 1.0
    metrics.RECORDER.set("cb_tenant_actors_alive", 2)
    assert rep.report(idle_skip=True) is not None  # a gauge changed
    for _ in range(metrics.QUIET_EVERY - 1):
        now[0] += 1.0
        assert rep.report(idle_skip=True) is None
    now[0] += 1.0  # a quiet report's time: well before the totals would call it stale
    assert metrics.QUIET_EVERY < metrics_actor.stale_after_s(Settings(metrics_report_s=1.0)) / 2
    assert rep.report(idle_skip=True) is not None
    assert len(actor.batches) == 3
    assert all(b.gauges == {("cb_tenant_actors_alive", ()): 2.0} for b in actor.batches[1:])


def test_a_trickle_of_counts_waits_for_a_quiet_report_and_a_busy_process_reports_at_once(
    reporter: Any,
) -> None:
    rep, actor, now = reporter
    assert rep.report(idle_skip=True) is not None  # the first report goes at once
    now[0] += 1.0
    metrics.RECORDER.inc("cb_executions_total", ("agent_execution", "completed"), tenant="t")
    assert rep.report(idle_skip=True) is None  # one count: not worth a Ray call yet
    for _ in range(metrics.QUIET_EVERY - 2):
        now[0] += 1.0
        assert rep.report(idle_skip=True) is None
    now[0] += 1.0
    assert rep.report(idle_skip=True) is not None  # the quiet report carries the count
    assert actor.batches[-1].counters == {
        ("cb_executions_total", ("agent_execution", "completed", "t")): 1.0
    }
    now[0] += 1.0
    for _ in range(metrics.BUSY_RECORDS):
        metrics.RECORDER.observe("cb_event_store_batch_events", 1.0)
    assert rep.report(idle_skip=True) is not None  # busy: a second after the last, at once
    (row,) = actor.batches[-1].histograms.values()
    assert row[-1] == metrics.BUSY_RECORDS  # every observation, once
    assert metrics.RECORDER.pending == 0
