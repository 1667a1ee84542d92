"""Legacy imports into a tenant (`cb migrate`; admin token only): run or plan one, read what
it created, roll it back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from api.auth import AdminBy, require_admin
from api.routes.admin import check_tenant_id
from api.runtime import Rt, Runtime
from domain.errors import NotFound
from domain.legacy_import import ImportRequest

router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)], tags=["admin"])


@router.post("/tenants/{tenant_id}/migrations")
async def import_legacy(
    tenant_id: str, body: ImportRequest, by: AdminBy, runtime: Rt, response: Response
) -> dict[str, Any]:
    """Import legacy records (or, with `dry_run`, only plan it): each record's action —
    create, skip (imported before) or error (why) — and the migration id of a real run."""
    check_tenant_id(tenant_id)
    answer = await runtime.tenant(tenant_id).import_legacy(body.model_dump(), by)
    response.status_code = 200 if body.dry_run else 201
    return answer


@router.get("/tenants/{tenant_id}/migrations/{migration_id}")
async def describe_migration(tenant_id: str, migration_id: str, runtime: Rt) -> dict[str, Any]:
    """The migration and each record it created: its legacy source and what is here now."""
    check_tenant_id(tenant_id)
    return await runtime.tenant(tenant_id).describe_migration(migration_id)


@router.post("/tenants/{tenant_id}/migrations/{migration_id}/rollback")
async def roll_back_migration(
    tenant_id: str, migration_id: str, by: AdminBy, runtime: Rt
) -> dict[str, Any]:
    """Remove what the migration created; what users created since stays (counted)."""
    check_tenant_id(tenant_id)
    tenant = runtime.tenant(tenant_id)
    done = await tenant.roll_back_migration(migration_id, by)
    kept = 0
    for agent_id in done["rolled_back_agent_ids"]:
        runs = await runtime.read_models.list_executions(
            tenant_id, {"agent_id": agent_id, "kind": "agent_execution", "limit": 10_000}
        )
        kept += len(runs)
    return {**done, "kept": {"executions_of_removed_agents": kept}}


async def _tenant_of(migration_id: str, runtime: Runtime) -> str:
    tenant_id = await runtime.read_models.migration_tenant(migration_id)
    if tenant_id is None:
        raise NotFound(f"migration {migration_id} not found")
    return tenant_id


@router.get("/migrations/{migration_id}")
async def find_migration(migration_id: str, runtime: Rt) -> dict[str, Any]:
    """A migration by its id alone (as `cb migrate verify` has it)."""
    tenant_id = await _tenant_of(migration_id, runtime)
    return await runtime.tenant(tenant_id).describe_migration(migration_id)


@router.post("/migrations/{migration_id}/rollback")
async def roll_back_by_id(migration_id: str, by: AdminBy, runtime: Rt) -> dict[str, Any]:
    """Roll a migration back by its id alone (as `cb migrate rollback` has it)."""
    tenant_id = await _tenant_of(migration_id, runtime)
    return await roll_back_migration(tenant_id, migration_id, by, runtime)
