"""The Migration aggregate: one run of `cb migrate import` into a tenant — where it read
from, each record it created (legacy id → id here), and its rollback."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict


class Migration(Aggregate):
    """Records are added batch by batch, each batch saved with what it created, so a run cut
    short holds exactly what it imported; `finished` says whether it got to the end."""

    @event("Started")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        source: dict[str, Any],
        model_map: dict[str, str],
        planned: dict[str, int],
        by: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.source = source
        self.model_map = model_map
        self.planned = planned
        self.records: list[dict[str, Any]] = []
        self.finished = False
        self.rolled_back: dict[str, Any] | None = None

    def add_records(self, records: list[dict[str, Any]]) -> None:
        """Records created: `{"kind", "legacy_id", "id", "source"}` (the legacy record)."""
        self._records_imported(self.tenant_id, records)

    @event("RecordsImported")
    def _records_imported(self, tenant_id: str, records: list[dict[str, Any]]) -> None:
        self.records.extend(records)

    def finish(self, counts: dict[str, Any]) -> None:
        self._finished(self.tenant_id, counts)

    @event("Finished")
    def _finished(self, tenant_id: str, counts: dict[str, Any]) -> None:
        self.finished = True

    def roll_back(self, removed: dict[str, int], by: str | None) -> None:
        if self.rolled_back is not None:
            raise Conflict(f"migration {self.id} was already rolled back")
        self._rolled_back(self.tenant_id, removed, by, time.time())

    @event("RolledBack")
    def _rolled_back(
        self, tenant_id: str, removed: dict[str, int], by: str | None, at: float
    ) -> None:
        self.rolled_back = {"at": at, "removed": removed, "by": by}

    def as_api(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record["kind"]] = counts.get(record["kind"], 0) + 1
        return {
            "id": str(self.id),
            "tenant_id": self.tenant_id,
            "source": self.source,
            "model_map": self.model_map,
            "planned": self.planned,
            "imported": counts,
            "finished": self.finished,
            "rolled_back": self.rolled_back,
            "created_at": self.created_on.timestamp(),
        }
