"""Platform administration: tenants and their API keys (admin token only)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from api.admission import Admitting
from api.auth import AdminBy, require_admin
from api.ids import UUID_PATTERN, client_of
from api.provider_views import provider_views
from api.routes.audit import AuditQuery
from api.runtime import Rt, Runtime
from domain.audit import PLATFORM
from domain.errors import NotFound
from domain.schemas import ApiKeyCreate, TenantCreate, reference_definitions
from domain.tenant_limits import TenantLimitsUpdate

router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)], tags=["admin"])


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, by: AdminBy, runtime: Rt) -> dict[str, Any]:
    """Create a tenant; the answer holds its first API key, shown this once."""
    tenant_id = str(uuid.uuid4())
    return await runtime.tenant(tenant_id).create_tenant(body.name, by)


@router.get("/tenants")
async def list_tenants(
    runtime: Rt,
    limit: int = Query(default=100, ge=1, le=500),
    before: float | None = Query(default=None, description="a created_at: older tenants"),
) -> dict[str, Any]:
    """The platform's tenants, newest first, with their live key counts (erased tenants are
    gone); `next_before` pages backwards."""
    tenants = await runtime.read_models.list_tenants(limit, before)
    next_before = tenants[-1]["created_at"] if len(tenants) == limit else None
    return {"tenants": tenants, "next_before": next_before}


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: str, runtime: Rt) -> dict[str, Any]:
    check_tenant_id(tenant_id)
    return await runtime.tenant(tenant_id).describe()


@router.post("/tenants/{tenant_id}/api-keys", status_code=201)
async def issue_api_key(
    tenant_id: str, by: AdminBy, runtime: Rt, body: ApiKeyCreate | None = None
) -> dict[str, Any]:
    """Issue another key for the tenant (the secret is shown once, stored only as a hash)."""
    check_tenant_id(tenant_id)
    body = body or ApiKeyCreate()
    return await runtime.tenant(tenant_id).issue_api_key(body.scopes, body.expires_at, by)


@router.get("/tenants/{tenant_id}/export")
async def export_tenant(tenant_id: str, request: Request, runtime: Rt) -> StreamingResponse:
    """Everything the platform holds about the tenant, as JSON lines: its events (sealed
    secrets and key hashes redacted) and its read-model rows. Recorded in its audit trail."""
    check_tenant_id(tenant_id)
    return await exported(runtime, request, tenant_id, "platform-admin")


async def exported(
    runtime: Runtime, request: Request, tenant_id: str, actor: str
) -> StreamingResponse:
    """The tenant's export as JSON lines, noted in its trail as `actor`'s `data.exported`."""
    await runtime.tenant(tenant_id).describe()  # 404 for a tenant that does not exist
    lines = await runtime.read_models.export_tenant(tenant_id)
    note_access(runtime, request, "data.exported", tenant_id, {"lines": len(lines)}, actor)
    body = (json.dumps(line, default=str) + "\n" for line in lines)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.delete("/tenants/{tenant_id}")
async def erase_tenant(tenant_id: str, request: Request, runtime: Rt) -> dict[str, Any]:
    """Erase the tenant: its cached answers go, its actor stops, its events and read-model
    rows are deleted. What stays is one `data.erased` entry (who, from where, how much), for
    the platform admin."""
    check_tenant_id(tenant_id)
    tenant = runtime.tenant(tenant_id)
    await tenant.describe()
    cached = await tenant.clear_cache("platform-admin")
    keys = [key["id"] for key in await runtime.read_models.list_keys(tenant_id)]
    await tenant.stop()
    erased = {**await runtime.read_models.erase_tenant(tenant_id), "cached_answers": cached}
    await runtime.keys.revoked_here(keys)  # its keys stop on every replica at once
    note_access(runtime, request, "data.erased", tenant_id, erased)
    return {"id": tenant_id, "erased": True, **erased}


def note_access(
    runtime: Runtime,
    request: Request,
    kind: str,
    tenant_id: str,
    detail: dict[str, Any],
    actor: str = "platform-admin",
    path: str | None = None,
) -> None:
    """An audit entry for what was done with a tenant's data (by the platform admin, or the
    tenant's own credential); `path` in place of the request's, to leave an id out."""
    entry = {"kind": kind, "tenant_id": tenant_id, "actor": actor, "detail": detail}
    runtime.security_log.note([entry], client_of(request), request.method,
                              path or request.url.path)  # fmt: skip


@router.get("/tenants/{tenant_id}/audit")
async def tenant_audit_trail(tenant_id: str, query: AuditQuery, runtime: Rt) -> dict[str, Any]:
    """Any tenant's audit trail, an erased tenant's `data.erased` entry included."""
    check_tenant_id(tenant_id)
    return {"entries": await query.entries(runtime, tenant_id)}


@router.get("/audit")
async def platform_audit_trail(query: AuditQuery, runtime: Rt) -> dict[str, Any]:
    """The platform's own trail, newest first: configuration changes (virtual models,
    provider settings, ingress limits) and reloads with who and from where, and master key
    rotations."""
    return {"entries": await query.entries(runtime, PLATFORM)}


@router.get("/tenants/{tenant_id}/api-keys")
async def list_api_keys(tenant_id: str, runtime: Rt) -> dict[str, Any]:
    """The tenant's keys (hint, scopes, expiry, issued, revoked, last used); no secrets."""
    check_tenant_id(tenant_id)
    await runtime.tenant(tenant_id).describe()  # 404 for a tenant that does not exist
    return {"api_keys": await runtime.read_models.list_keys(tenant_id)}


@router.delete("/tenants/{tenant_id}/api-keys/{key_id}")
async def revoke_api_key(tenant_id: str, key_id: str, by: AdminBy, runtime: Rt) -> dict[str, Any]:
    """Revoke a key; every ingress replica refuses it from the moment this answers."""
    check_tenant_id(tenant_id)
    done = await runtime.tenant(tenant_id).revoke_api_key(key_id, by)
    await runtime.keys.revoked_here([key_id])
    return done


@router.put("/tenants/{tenant_id}/limits")
async def set_limits(
    tenant_id: str, body: TenantLimitsUpdate, by: AdminBy, runtime: Rt, admission: Admitting
) -> dict[str, Any]:
    """Set the tenant's limits at runtime; omitted fields take the configured defaults.

    A rate refusal another replica remembers still holds until its Retry-After."""
    check_tenant_id(tenant_id)
    limits = await runtime.tenant(tenant_id).set_limits(body.own(), by)
    admission.refusals.forget(tenant_id)
    return limits


@router.get("/tenants/{tenant_id}/limits")
async def get_limits(tenant_id: str, runtime: Rt) -> dict[str, Any]:
    """The tenant's effective limits and what is left of them now."""
    check_tenant_id(tenant_id)
    return await runtime.tenant(tenant_id).get_limits()


@router.post("/tenants/{tenant_id}/reference-agents")
async def install_reference_agents(tenant_id: str, by: AdminBy, runtime: Rt) -> dict[str, Any]:
    """Install the four reference agents of PED 13.1 for the tenant (idempotent)."""
    check_tenant_id(tenant_id)
    return await runtime.tenant(tenant_id).install_agents(reference_definitions(), by)


def check_tenant_id(tenant_id: str) -> None:
    """A tenant id that is no UUID names no tenant."""
    if not UUID_PATTERN.match(tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist")


@router.get("/providers")
async def list_providers(runtime: Rt) -> dict[str, Any]:
    """Every configured provider with its models and health, as a tenant sees them at
    `GET /api/v1/providers` (for the operators' view)."""
    return {"providers": await provider_views(runtime)}


@router.get("/projections")
async def projection_lag(runtime: Rt) -> dict[str, Any]:
    """Each projection's position, the store's head, and how far behind it is (events, and
    the age in seconds of the oldest event not yet folded)."""
    return {"projections": await runtime.read_models.lag()}


@router.post("/retention/sweep")
async def sweep_retention(runtime: Rt) -> dict[str, Any]:
    """Run the retention sweep now (it also runs every `CB_RETENTION_SWEEP_S`): for each
    tenant with a retention, what went."""
    return {"swept": await runtime.read_models.sweep_retention()}
