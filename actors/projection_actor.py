"""ProjectionActor: follows the event store into the read models and answers queries on them."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from typing import Any

import ray
from eventsourcing.application import AggregateNotFoundError

from actors import heap, metrics, names, retention_sweeper, tenant_data
from actors.event_store import AsyncEventStore
from actors.log_setup import configure_logging
from actors.replies import replies
from actors.revocation_feed import RevocationFeed
from actors.secrets import SecretBox
from actors.settings import Settings
from domain.audit import SecurityRecord
from domain.deprecations import DeprecatedUsage
from domain.migration import Migration
from projections import (
    analytics,
    audit,
    budgets,
    collaborations,
    decoded,
    deprecations,
    directory,
    feedback,
    history,
    runner,
    tenant_rows,
)
from projections.db import ReadModelDB

log = logging.getLogger(__name__)
SUBJECT_MAX = 100_000  # executions listed or exported for one data subject
REVOCATION_ACK_S = 1.0  # how long a revocation waits for every replica to have applied it


@ray.remote
class ProjectionActor:
    """The one writer of the read models; a miss catches up first (read-your-writes)."""

    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "projection")
        self.settings = settings
        self.store = AsyncEventStore(settings, threads=2)
        self.revocations = RevocationFeed()
        self.db = ReadModelDB(settings.read_model_url())
        # the metrics live apart (PostgreSQL: the `analytics` schema analysts may read)
        self.metrics_db = ReadModelDB(settings.read_model_url(), schema=runner.METRICS.schema)
        history.seal_results_with(SecretBox(settings) if settings.encrypt_payloads else None)
        history.seal_payloads_with(self.store.payload_keys)
        runner.create_tables(self.db)
        runner.create_tables(self.metrics_db, runner.METRICS)
        self._lock = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self._lag_watch: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._level_at = float("-inf")  # when the follower last found nothing new (loop time)
        metrics.start(settings, "projection")
        heap.settle()

    def _ensure_following(self) -> None:
        if self._follower is None or self._follower.done():
            loop = asyncio.get_running_loop()
            self._follower = loop.create_task(self._follow())
            self._lag_watch = loop.create_task(self._watch_lag())
            self._sweeper = loop.create_task(self._sweep_periodically())

    async def _watch_lag(self) -> None:
        """Each projection's lag, as a gauge, once per metrics report: 0 without a query
        when the follower's last poll found nothing new, else measured (`runner.lag`)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.settings.metrics_report_s)
            try:
                if loop.time() - self._level_at <= 2 * self.settings.projection_poll_s:
                    rows = [{"name": p.name, "lag_seconds": 0.0} for _, p in self._projections()]
                else:
                    rows = await self._lags()
                for row in rows:
                    metrics.RECORDER.set(
                        "cb_projection_lag_seconds", row["lag_seconds"], (row["name"],)
                    )
            except Exception:  # a failed sample leaves the last value; the next one retries
                log.debug("projection lag sample failed", exc_info=True)

    async def _follow(self) -> None:
        """Fold what is new every `projection_poll_s`: each pass drains the store to its head
        in batches, so events gather between passes (one transaction per projection per pass,
        not per handful of events) and a read model is at most a poll interval behind; a read
        that misses catches up at once (`_read`)."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not await self._catch_up():
                    self._level_at = loop.time()  # every projection was at the store's head
            except Exception:  # keep following; the next poll retries from the tracked position
                log.exception("projection catch-up failed")
            await asyncio.sleep(self.settings.projection_poll_s)

    async def _sweep_periodically(self) -> None:
        """The retention sweep, every `retention_sweep_s` (each sweep audited per tenant)."""
        while True:
            await asyncio.sleep(self.settings.retention_sweep_s)
            try:
                reply = await self.sweep_retention()
                if "error" in reply:
                    log.warning("retention sweep failed: %s", reply["error"]["type"])
            except Exception:  # the next sweep retries
                log.exception("retention sweep failed")

    @replies
    async def sweep_retention(self, now: float | None = None) -> list[dict[str, Any]]:
        """Sweep every tenant that has a retention, as of `now` (default: now); what went.
        Everything committed before is folded first, and nothing folds meanwhile."""
        at = time.time() if now is None else now
        app, dbs = self.store.app, (self.db, self.metrics_db)
        async with self._lock:
            for db, projection in self._projections():
                await self.store.run(runner.catch_up_fully, app, db, projection)
            found = await self.store.run(retention_sweeper.retentions, app)
            sweep = functools.partial(retention_sweeper.sweep_tenant, app,
                                      self.store.payload_keys, dbs)  # fmt: skip
            swept = [
                await self.store.run(sweep, tenant_id, retention, at)
                for tenant_id, retention in sorted(found.items())
            ]
            decoded.forget()
        return swept

    @replies
    async def forget_payload_keys(self, tenant_id: str, subject_ref: str) -> int:
        """A data subject's keys were destroyed: forget every copy opened under them here;
        how many executions the tenant ran for the subject."""
        async with self._lock:
            self.store.payload_keys.forget(tenant_id, subject_ref)
            decoded.forget()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(history.count_subject, self.db, tenant_id, subject_ref)

    @replies
    async def subject_data(
        self, tenant_id: str, subject_ref: str, with_events: bool
    ) -> dict[str, Any]:
        """One data subject's executions (with their input), and with `with_events` every
        event of them; payloads opened, or marked erased."""
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        rows = await self.store.run(
            lambda db: feedback.with_feedback(db, tenant_id, history.list_executions(
                db, tenant_id, subject_ref=subject_ref, with_input=True, limit=SUBJECT_MAX
            )),
            self.db,
        )
        found: dict[str, Any] = {"executions": rows}
        if with_events:
            ids = [uuid.UUID(row["execution_id"]) for row in rows]
            app = self.store.app
            found["events"] = await self.store.run(
                lambda: list(tenant_data.exported_events(app, ids))
            )
        return found

    @replies
    async def catch_up(self) -> int:
        """Fold whatever is new now; the number of events read."""
        return await self._catch_up()

    async def _catch_up(self, *only: runner.Projection) -> int:
        """Fold everything committed before the call into every projection (or `only` those
        a read needs), batch by batch (a read that missed must see its own writes however far
        behind the follower is); one pass at a time."""
        async with self._lock:
            total = 0
            for db, projection in self._projections():
                if not only or any(projection is p for p in only):
                    total += await self.store.run(
                        runner.catch_up_fully, self.store.app, db, projection
                    )
            return total

    def _projections(self) -> list[tuple[ReadModelDB, runner.Projection]]:
        return [(self.db, runner.READ_MODELS), (self.metrics_db, runner.METRICS)]

    async def _read(self, fn: Any, *args: Any, settled: Any = lambda found: found) -> Any:
        """Read; if the answer may be stale (missing, or not `settled`), catch up and reread."""
        self._ensure_following()
        found = await self.store.run(fn, self.db, *args)
        if not found or not settled(found):
            await self._catch_up(runner.READ_MODELS)
            found = await self.store.run(fn, self.db, *args)
        return found

    @replies
    async def ping(self) -> int:
        """The tracked position; proves the store and the read models answer."""
        self._ensure_following()
        return await self.store.run(runner.position, self.db)

    @replies
    async def lookup_key(self, key_hash: str) -> dict[str, Any] | None:
        return await self._read(directory.lookup_key, key_hash, time.time())

    @replies
    async def note_revocations(self, key_ids: list[str]) -> int:
        """Keys were revoked (or erased): fold that (every lookup from now on sees it), then
        tell the replicas following `revocations_after`, and wait (a second at most) until each
        has applied it. The feed's new position."""
        await self._catch_up(runner.READ_MODELS)
        seq = self.revocations.add(key_ids)
        if not await self.revocations.applied(seq, REVOCATION_ACK_S):
            log.warning("a replica did not confirm revocation %d within %.1f s", seq,
                        REVOCATION_ACK_S)  # fmt: skip
        return seq

    @replies
    async def revocations_after(
        self, epoch: str | None, seq: int, wait_s: float, follower: str
    ) -> dict:
        """The keys revoked after `seq` of feed `epoch`, as soon as there are any (or none
        after `wait_s`); a different epoch means the feed restarted: forget every cached key."""
        return await self.revocations.after(epoch, seq, wait_s, follower)

    @replies
    async def record_security(self, entries: list[dict[str, Any]]) -> None:
        """Keep a batch of refusals seen by an ingress replica as one event."""
        await self.store.save(SecurityRecord(entries))

    @replies
    async def record_deprecations(self, rows: list[dict[str, Any]]) -> None:
        """Keep a batch of deprecated field uses seen by an ingress replica as one event."""
        await self.store.save(DeprecatedUsage(rows))

    @replies
    async def deprecated_usage(self, tenant_id: str | None) -> list[dict[str, Any]]:
        """Deprecated field use of the tenant (of every tenant when None), after folding
        what is new."""
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(deprecations.usage, self.db, tenant_id)

    @replies
    async def list_audit(
        self,
        tenant_id: str,
        kinds: list[str],
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        await self._catch_up(runner.READ_MODELS)  # a change made a moment ago is listed
        return await self.store.run(
            audit.list_entries, self.db, tenant_id, kinds, since, until, limit
        )

    @replies
    async def budget_spent(self, tenant_id: str, since: dict[str, float]) -> dict[str, float]:
        """Per budget scope, the cost of the tenant's finished executions started since the
        scope's time, after folding what is new."""
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(budgets.spent_since, self.db, tenant_id, since)

    @replies
    async def budget_events(self, tenant_id: str, after: int, limit: int) -> list[dict[str, Any]]:
        """The tenant's budget events after `after`, as folded so far (the follower folds new
        events within its poll interval)."""
        self._ensure_following()
        return await self.store.run(budgets.events_after, self.db, tenant_id, after, limit)

    @replies
    async def export_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        """Every event and read-model row the platform holds about the tenant."""
        await self._catch_up()
        app = self.store.app
        executions = await self.store.run(tenant_rows.execution_ids, self.db, tenant_id)
        ids = await self.store.run(tenant_data.aggregate_ids, app, tenant_id, executions)
        events = await self.store.run(lambda: list(tenant_data.exported_events(app, ids)))
        rows = await self.store.run(tenant_rows.exported_rows, self.db, tenant_id)
        rows += await self.store.run(
            tenant_rows.exported_rows, self.metrics_db, tenant_id, tenant_rows.METRIC_TABLES
        )
        return events + rows

    @replies
    async def erase_tenant(self, tenant_id: str) -> dict[str, int]:
        """Delete the tenant's events and read-model rows (its actor is stopped first)."""
        async with self._lock:  # no catch-up folds the tenant's events back meanwhile
            for db, projection in self._projections():
                await self.store.run(runner.catch_up_fully, self.store.app, db, projection)
            app = self.store.app
            executions = await self.store.run(tenant_rows.execution_ids, self.db, tenant_id)
            ids = await self.store.run(tenant_data.aggregate_ids, app, tenant_id, executions)
            events = await self.store.run(tenant_data.erase_events, app, ids)
            rows = await self.store.run(tenant_rows.erase_rows, self.db, tenant_id)
            rows += await self.store.run(
                tenant_rows.erase_rows, self.metrics_db, tenant_id, tenant_rows.METRIC_TABLES
            )
            keys = await self.store.run(self.store.payload_keys.destroy, tenant_id)
            decoded.forget()
        return {"aggregates": len(ids), "events": events, "rows": rows, "payload_keys": keys}

    @replies
    async def list_tenants(self, limit: int, before: float | None) -> list[dict[str, Any]]:
        await self._catch_up(runner.READ_MODELS)  # a tenant created a moment ago is listed
        return await self.store.run(directory.list_tenants, self.db, limit, before)

    @replies
    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        await self._catch_up(runner.READ_MODELS)  # a key issued a moment ago is listed
        return await self.store.run(directory.list_keys, self.db, tenant_id)

    @replies
    async def analytics(
        self, question: str, tenant_id: str, start: float, end: float, **args: Any
    ) -> list[dict[str, Any]]:
        """`projections.analytics`' `question` (usage, models, errors) for the tenant, after
        folding what is new (an execution that just ended is counted)."""
        self._ensure_following()
        await self._catch_up(runner.METRICS)
        ask = {"usage": analytics.usage, "models": analytics.models, "errors": analytics.errors}
        answer = functools.partial(ask[question], **args)
        return await self.store.run(answer, self.metrics_db, tenant_id, start, end)

    @replies
    async def lag(self) -> list[dict[str, Any]]:
        """How far each projection is behind the store (see `runner.lag`)."""
        self._ensure_following()
        return await self._lags()

    async def _lags(self) -> list[dict[str, Any]]:
        return [
            await self.store.run(runner.lag, self.store.app, db, projection)
            for db, projection in self._projections()
        ]

    @replies
    async def get_execution(self, tenant_id: str, execution_id: str) -> dict[str, Any] | None:
        """The execution's record with everything committed before the call folded in: an
        ended execution's feedback or judge verdict may be newer than its end."""
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(feedback.execution_record, self.db, tenant_id, execution_id)

    @replies
    async def get_executions(self, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The tenant's executions of these ids that history holds, by id."""
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(history.get_many, self.db, tenant_id, ids)

    @replies
    async def list_executions(
        self, tenant_id: str, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(
            lambda db: history.list_executions(db, tenant_id, **filters), self.db
        )

    @replies
    async def list_collaboration_runs(
        self, tenant_id: str, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(
            lambda db: collaborations.list_runs(db, tenant_id, **filters), self.db
        )

    @replies
    async def collaboration_analytics(
        self, tenant_id: str, start: float, end: float, collaboration_id: str | None
    ) -> dict[str, Any]:
        self._ensure_following()
        await self._catch_up(runner.READ_MODELS)
        return await self.store.run(
            collaborations.analytics, self.db, tenant_id, start, end, collaboration_id
        )

    @replies
    async def migration_tenant(self, migration_id: str) -> str | None:
        """The tenant a migration (`domain.migration`) imported into; None if there is none."""

        def find() -> str | None:
            try:
                migration = self.store.app.repository.get(uuid.UUID(migration_id))
            except (AggregateNotFoundError, ValueError):
                return None
            return migration.tenant_id if isinstance(migration, Migration) else None

        return await self.store.run(find)


def handle(settings: Settings) -> Any:
    """The deployment's projection actor, started if none runs."""
    return names.get_or_create(names.projection_actor_name(settings), ProjectionActor, settings)
