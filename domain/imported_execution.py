"""The ImportedExecution aggregate: a legacy execution brought over by a migration,
read-only, with its original times, status, input and output; retracted on rollback."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event


class ImportedExecution(Aggregate):
    """No LLM call was made here for it: it holds what the legacy system recorded."""

    @event("Imported")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        migration_id: str,
        record: dict[str, Any],  # `domain.legacy_import.execution_record`'s row
    ) -> None:
        self.tenant_id = tenant_id
        self.migration_id = migration_id
        self.record = record
        self.retracted = False

    def retract(self, migration_id: str, by: str | None) -> None:
        """Withdraw it (its migration was rolled back); a no-op when already withdrawn."""
        if not self.retracted:
            self._retracted(self.tenant_id, migration_id, by)

    @event("Retracted")
    def _retracted(self, tenant_id: str, migration_id: str, by: str | None) -> None:
        self.retracted = True
