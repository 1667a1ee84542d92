"""Audit trails: a tenant's own (scope `tenant:admin`); the admin routes read any tenant's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api import runtime
from api.auth import Caller

router = APIRouter(tags=["audit"])


@dataclass
class _AuditFilters:
    """The trail's filters, as query parameters."""

    kind: Annotated[list[str] | None, Query(description="only these kinds (repeatable)")] = None
    since: Annotated[float | None, Query(description="unix seconds, inclusive")] = None
    until: Annotated[float | None, Query(description="unix seconds, exclusive")] = None
    limit: Annotated[int, Query(ge=1, le=500)] = 100

    async def entries(self, tenant_id: str) -> list[dict[str, Any]]:
        """The tenant's entries that pass the filters, newest first."""
        args = (tenant_id, self.kind or [], self.since, self.until, self.limit)
        return await runtime.query("list_audit", *args)


AuditQuery = Annotated[_AuditFilters, Depends()]


@router.get("/api/v1/audit")
async def audit_trail(who: Caller, query: AuditQuery) -> dict[str, Any]:
    """Who did what, when and from where, newest first: changes and refusals."""
    who.require("tenant:admin")
    return {"entries": await query.entries(who.tenant_id)}
