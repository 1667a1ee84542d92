"""This process's metrics: one recorder, handed to the deployment's metrics actor by a daemon
thread: each `metrics_report_s` while the process is busy, less often while it trickles (a Ray
call per report, none per request).

`start(settings, role)` once per process (the ingress replica, each actor); `RECORDER` is
where the work records. Recording before `start` is kept and handed over once it runs.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from actors import metrics_actor, names
from actors.settings import Settings
from domain.llm import Usage
from domain.metric_families import GENAI_PROVIDER
from domain.prometheus import Recorder

log = logging.getLogger(__name__)

RECORDER = Recorder()
_reporter: Reporter | None = None


QUIET_EVERY = metrics_actor.QUIET_EVERY
BUSY_RECORDS = 50  # counts and observations that make a report worth its Ray call at once


class Reporter:
    """Hands the recorder's deltas to the metrics actor. It looks every `every_s` seconds and
    reports when the process is busy (`BUSY_RECORDS` counted since its last report) or a
    gauge changed; a quiet process (a trickle of counts, or none) reports every
    `QUIET_EVERY` looks, which also keeps its gauges from going stale. A report costs a Ray
    call on both ends: 64 tenant actors each seeing about a request a second sent the metrics
    actor 64 a second, ~13 now (bench/README.md, 2026-12-07)."""

    def __init__(self, settings: Settings, role: str) -> None:
        self.settings = settings
        self.source = f"{role}:{socket.gethostname()}:{os.getpid()}"
        self.every_s = settings.metrics_report_s
        self.clock = time.monotonic
        self._stop = threading.Event()
        self._last: Any = None
        self._sent_gauges: dict[Any, float] | None = None
        self._sent_at = 0.0
        self._thread = threading.Thread(target=self._loop, name="cb-metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()
        atexit.register(self.stop)

    def _actor(self) -> Any:
        return metrics_actor.handle(self.settings)

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.report(idle_skip=True)

    def report(self, idle_skip: bool = False) -> Any:
        """Hand over what was recorded since the last report; the call's reference (or
        None when the actor could not be reached, or `idle_skip` and the process is quiet
        with a quiet report not yet due: what it counted goes with a later report)."""
        self._check_last()
        now = self.clock()
        gauges = None
        if (
            idle_skip
            and now - self._sent_at < (QUIET_EVERY - 0.5) * self.every_s
            and RECORDER.pending < BUSY_RECORDS
        ):
            gauges = RECORDER.gauges_now()
            if gauges == self._sent_gauges:
                return None
        batch = RECORDER.take(gauges)  # the gauges just read, not the collectors run again
        try:
            sent = self._actor().add.remote(self.source, batch)
        except Exception as exc:  # the deltas are lost; the next report carries on
            log.debug("metrics report failed: %s", type(exc).__name__)
            return None
        self._last, self._sent_gauges, self._sent_at = sent.future(), batch.gauges, now
        return sent

    def _check_last(self) -> None:
        """If the last report failed (the metrics actor died), find the actor anew."""
        last, self._last = self._last, None
        if last is not None and last.done() and last.exception() is not None:
            names.forget(names.metrics_actor_name(self.settings))

    def stop(self) -> Any:
        """The last report (the process is leaving): its counts stay, its gauges go. The
        call's reference, or None (stopped already, or Ray is down at interpreter exit)."""
        if self._stop.is_set():
            return None
        self._stop.set()
        try:
            return self._actor().goodbye.remote(self.source, RECORDER.take())
        except Exception:
            return None

    async def leave(self, timeout_s: float = 2.0) -> None:
        """`stop`, waiting until the metrics actor has the last report (an actor about to
        exit its process)."""
        sent = self.stop()
        if sent is None:
            return
        try:
            await asyncio.wait_for(asyncio.wrap_future(sent.future()), timeout_s)
        except Exception as exc:
            log.debug("last metrics report failed: %s", type(exc).__name__)


def start(settings: Settings, role: str) -> Reporter:
    """Start this process's reporter (once; later calls return the first)."""
    global _reporter
    if _reporter is None:
        RECORDER.tenant_mode = settings.metrics_tenant_label
        _reporter = Reporter(settings, role)
        _reporter.start()
    return _reporter


def reporter() -> Reporter | None:
    return _reporter


def watch(name: str, collect: Callable[[Recorder], None]) -> None:
    """Call `collect` before every report: it sets this process's gauges."""
    RECORDER.collectors[name] = collect


async def leave() -> None:
    """This process is about to exit: its last report, delivered."""
    if _reporter is not None:
        await _reporter.leave()


# what the work records, one call per fact


def attempt_done(
    tenant: str | None,
    provider: str,
    provider_type: str,
    model: str,
    response_model: str,
    error_type: str | None,
    latency_s: float | None,
    ttfc_s: float | None = None,
    usage: Usage | None = None,
) -> None:
    """One provider attempt ended (answered, failed, or refused a permit: no latency)."""
    rec = RECORDER
    rec.inc("cb_provider_attempts_total", (provider, model, error_type or "ok"))
    if latency_s is None:
        return
    rec.observe("cb_provider_latency_seconds", latency_s, (provider,))
    genai = ("chat", GENAI_PROVIDER.get(provider_type, provider_type), model,
             response_model or model)  # fmt: skip
    rec.observe("gen_ai_client_operation_duration_seconds", latency_s,
                (*genai, error_type or ""), tenant)  # fmt: skip
    if ttfc_s is not None:
        rec.observe("gen_ai_client_operation_time_to_first_chunk_seconds", ttfc_s, genai, tenant)
    if usage is not None and error_type is None:
        rec.observe("gen_ai_client_token_usage", usage.prompt_tokens, (*genai, "input"), tenant)
        rec.observe("gen_ai_client_token_usage", usage.completion_tokens, (*genai, "output"),
                    tenant)  # fmt: skip


def execution_ended(
    tenant: str, kind: str, status: str, duration_s: float, model: str | None, cost_usd: float
) -> None:
    """An execution's terminal event is durable."""
    RECORDER.inc("cb_executions_total", (kind, status), tenant=tenant)
    RECORDER.observe("cb_execution_duration_seconds", duration_s, (kind, status), tenant)
    if model:
        RECORDER.inc("cb_cost_usd_total", (model,), cost_usd, tenant)


def store_written(seconds: float, events: int) -> None:
    """One group-commit write of `events` events to the event store."""
    RECORDER.observe("cb_event_store_write_seconds", seconds)
    RECORDER.observe("cb_event_store_batch_events", float(events))
