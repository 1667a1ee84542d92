"""The Agent aggregate: a named definition (model, prompts, parameters) and its versions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import NotFound


class Agent(Aggregate):
    """An agent definition; each update is a new version, deletion is a fact too."""

    @event("Created")
    def __init__(  # `by`: who and from where (None in events written before it was kept)
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        definition: dict[str, Any],
        by: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.definition = definition
        self.deleted = False

    def check_exists(self) -> None:
        """A deleted agent is gone for every command."""
        if self.deleted:
            raise NotFound(f"agent {self.id} not found")

    def update(self, changes: dict[str, Any], by: str | None = None) -> None:
        self.check_exists()
        self._updated(self.tenant_id, changes, by)

    @event("Updated")
    def _updated(self, tenant_id: str, changes: dict[str, Any], by: str | None = None) -> None:
        self.definition = {**self.definition, **changes}

    def delete(self, by: str | None = None) -> None:
        self.check_exists()
        self._deleted(self.tenant_id, by)

    @event("Deleted")
    def _deleted(self, tenant_id: str, by: str | None = None) -> None:
        self.deleted = True

    def as_api(self) -> dict[str, Any]:
        """The agent as the API shows it."""
        return {
            "id": str(self.id),
            "tenant_id": self.tenant_id,
            **self.definition,
            "version": self.version,
            "created_at": self.created_on.isoformat(),
            "updated_at": self.modified_on.isoformat(),
        }
