"""Deprecated API fields and who still uses them: a tenant's own use, and every tenant's for
the platform admin (GraphQL's `deprecatedUsage` reads the same)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from api.auth import Caller, require_admin
from api.graphql.deprecated_usage import catalog, require_usage_reader, usage_report
from api.ids import UUID_PATTERN
from api.runtime import Rt
from domain.errors import InvalidRequest

router = APIRouter(tags=["deprecations"])


@router.get("/api/v1/deprecations/usage")
async def tenant_usage(who: Caller, runtime: Rt) -> dict[str, Any]:
    """The tenant's use of deprecated fields (scope `tenant:admin` or `analytics:read`)."""
    require_usage_reader(who)
    usage = await usage_report(runtime, who.tenant_id)
    return {"deprecations": catalog(), "usage": usage}


@router.get("/api/v1/admin/deprecations/usage", dependencies=[Depends(require_admin)])
async def all_usage(runtime: Rt, tenant_id: str | None = None) -> dict[str, Any]:
    """Every tenant's use of deprecated fields (or `tenant_id`'s), most used first."""
    if tenant_id is not None and not UUID_PATTERN.match(tenant_id):
        raise InvalidRequest("tenant_id must be a tenant id (a lower-case UUID)")
    usage = await usage_report(runtime, tenant_id)
    return {"deprecations": catalog(), "usage": usage}
