"""The retention sweep: for each tenant with a retention, destroy the payload keys of the
hours that expired and delete the executions that did (events and read-model rows), then
record what went (`domain.retention.RetentionSweep`, on the tenant's audit trail)."""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

from actors.payload_keys import PayloadKeys
from actors.tenant_data import erase_events
from domain.retention import Retention, RetentionSweep, executions_before, payload_keys_before
from domain.tenant import Tenant
from projections.db import ReadModelDB
from projections.retention import delete_executions, expired_executions

log = logging.getLogger(__name__)
SWEEPER = "retention sweeper"


def retentions(app: Application[UUID]) -> dict[str, Retention]:
    """Each tenant's retention as last set (tenants without one are left out)."""
    topic = get_topic(Tenant.RetentionSet)
    notes = app.recorder.select_notifications(start=None, limit=10_000_000, topics=[topic])
    found: dict[str, Any] = {}
    for note in notes:
        event = app.mapper.to_domain_event(note)
        found[event.tenant_id] = event.retention
    return {t: Retention.model_validate(r) for t, r in found.items() if r}


def sweep_tenant(
    app: Application[UUID],
    keys: PayloadKeys,
    dbs: tuple[ReadModelDB, ReadModelDB],
    tenant_id: str,
    retention: Retention,
    now: float,
) -> dict[str, Any]:
    """Sweep one tenant as of `now`; what went, as recorded."""
    keys_before = payload_keys_before(now, retention.payload_days)
    destroyed = keys.destroy(tenant_id, before=keys_before)
    started_before, ids = None, []
    if retention.metrics_days is not None:
        started_before = executions_before(now, retention.metrics_days)
        ids = expired_executions(dbs[0], tenant_id, started_before)
        if ids:
            erase_events(app, [UUID(i) for i in ids])
        delete_executions(*dbs, tenant_id, ids, started_before)
    app.save(RetentionSweep(tenant_id, keys_before, destroyed, started_before, len(ids), SWEEPER))
    swept = {"tenant_id": tenant_id, "payload_keys_before": keys_before,
             "payload_keys": destroyed, "executions_before": started_before,
             "executions": len(ids)}  # fmt: skip
    log.info("retention sweep", extra=swept)
    return swept
