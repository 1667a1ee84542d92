"""The Execution aggregate: one run of an agent, from start to its terminal fact."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

TERMINAL = ("completed", "failed", "cancelled")


class Execution(Aggregate):
    """Started and ModelResolved are saved together before the provider is called."""

    @event("Started")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        agent_id: str,
        agent_version: int,
        request: dict[str, Any],
        model_requested: str,
        stream: bool,
    ) -> None:
        self.tenant_id = tenant_id
        self.agent_id = agent_id
        self.status = "running"
        self.model_requested = model_requested
        self.model_resolved: str | None = None

    def resolve_model(self, model: str, provider: str, routing: dict[str, Any]) -> None:
        self._model_resolved(self.tenant_id, model, provider, routing)

    @event("ModelResolved")
    def _model_resolved(
        self, tenant_id: str, model: str, provider: str, routing: dict[str, Any]
    ) -> None:
        self.model_resolved = model

    def complete(self, result: dict[str, Any]) -> None:
        self._completed(self.tenant_id, result)

    @event("Completed")
    def _completed(self, tenant_id: str, result: dict[str, Any]) -> None:
        self.status = "completed"

    def fail(self, error: dict[str, Any], result: dict[str, Any]) -> None:
        self._failed(self.tenant_id, error, result)

    @event("Failed")
    def _failed(self, tenant_id: str, error: dict[str, Any], result: dict[str, Any]) -> None:
        self.status = "failed"

    def cancel(self, result: dict[str, Any]) -> None:
        self._cancelled(self.tenant_id, result)

    @event("Cancelled")
    def _cancelled(self, tenant_id: str, result: dict[str, Any]) -> None:
        self.status = "cancelled"
