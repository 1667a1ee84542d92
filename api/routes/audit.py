"""Audit trails: a tenant's own (scope `tenant:admin`); the admin routes read any tenant's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.auth import Caller
from api.runtime import Rt, Runtime

router = APIRouter(tags=["audit"])


@dataclass
class _AuditFilters:
    """The trail's filters, as query parameters."""

    kind: Annotated[list[str] | None, Query(description="only these kinds (repeatable)")] = None
    since: Annotated[float | None, Query(description="unix seconds, inclusive")] = None
    until: Annotated[float | None, Query(description="unix seconds, exclusive")] = None
    limit: Annotated[int, Query(ge=1, le=500)] = 100

    async def entries(self, runtime: Runtime, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's entries that pass the filters, newest first."""
        return await runtime.read_models.list_audit(
            tenant_id, self.kind or [], self.since, self.until, self.limit
        )


AuditQuery = Annotated[_AuditFilters, Depends()]


@router.get("/api/v1/audit")
async def audit_trail(who: Caller, query: AuditQuery, runtime: Rt) -> dict[str, Any]:
    """Who did what, when and from where, newest first: changes and refusals."""
    who.require("tenant:admin")
    return {"entries": await query.entries(runtime, who.tenant_id)}
