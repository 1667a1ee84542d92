"""Who still uses deprecated fields: the usage read model, for the tenant (GraphQL
`deprecatedUsage`, `GET /api/v1/deprecations/usage`) and the platform admin (every tenant,
`GET /api/v1/admin/deprecations/usage`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import strawberry
from strawberry.types import Info

from api.auth import Principal
from api.graphql.context import runtime, who
from api.graphql.deprecation import DEPRECATIONS, deprecation_log
from api.runtime import Runtime


def require_usage_reader(caller: Principal) -> None:
    """`tenant:admin` or `analytics:read`, as budgets and analytics are read."""
    if "tenant:admin" not in caller.scopes:
        caller.require("analytics:read")


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()


async def usage_report(rt: Runtime, tenant_id: str | None) -> list[dict[str, Any]]:
    """Per tenant and deprecated field: uses, first and last seen, replacement and sunset;
    this replica's uncounted uses are recorded first (other replicas' within seconds)."""
    await deprecation_log(rt.read_models).flush()
    rows = await rt.read_models.deprecated_usage(tenant_id)
    report = []
    for row in rows:
        known = DEPRECATIONS.get(row["field"])
        report.append({
            "tenant_id": row["tenant_id"],
            "field": row["field"],
            "count": row["count"],
            "first_used_at": _iso(row["first_used_at"]),
            "last_used_at": _iso(row["last_used_at"]),
            "replacement": known.replacement if known else None,
            "deprecated_on": known.deprecated_on.isoformat() if known else None,
            "sunset_on": known.sunset_on.isoformat() if known else None,
        })  # fmt: skip
    return report


def catalog() -> list[dict[str, str]]:
    """Every deprecated field, its replacement and dates."""
    return [
        {"field": d.coordinate, "replacement": d.replacement,
         "deprecated_on": d.deprecated_on.isoformat(), "sunset_on": d.sunset_on.isoformat()}
        for d in DEPRECATIONS.values()
    ]  # fmt: skip


@strawberry.type(description="How often the tenant's operations used one deprecated field.")
class DeprecatedFieldUsageGQL:
    tenant_id: str
    field: str = strawberry.field(description="`Type.field`, or `Type.field(arg:)`")
    count: int = strawberry.field(description="operations that selected it")
    first_used_at: str
    last_used_at: str
    replacement: str | None
    deprecated_on: str | None
    sunset_on: str | None


@strawberry.type
class DeprecationQueries:
    @strawberry.field(
        description="The caller's tenant's use of deprecated fields, most used first "
        "(scope tenant:admin or analytics:read)."
    )
    async def deprecated_usage(self, info: Info) -> list[DeprecatedFieldUsageGQL]:
        caller = who(info)
        require_usage_reader(caller)
        rows = await usage_report(runtime(info), caller.tenant_id)
        return [DeprecatedFieldUsageGQL(**row) for row in rows]
