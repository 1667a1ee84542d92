"""Platform administration: tenants and their API keys (admin token only)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from api import admission, runtime, security_log
from api.auth import TENANT_ID, AdminBy, client_of, require_admin
from api.routes.audit import AuditQuery
from domain.errors import NotFound
from domain.reference_agents import REFERENCE_AGENTS
from domain.schemas import AgentCreate, ApiKeyCreate, TenantCreate, agent_definition
from domain.tenant_limits import TenantLimitsUpdate

router = APIRouter(prefix="/api/v1/admin", dependencies=[Depends(require_admin)], tags=["admin"])


@router.post("/tenants", status_code=201)
async def create_tenant(body: TenantCreate, who: AdminBy) -> dict[str, Any]:
    """Create a tenant; the answer holds its first API key, shown this once."""
    tenant_id = str(uuid.uuid4())
    return await runtime.call_tenant(tenant_id, "create_tenant", body.name, who)


@router.get("/tenants/{tenant_id}")
async def get_tenant(tenant_id: str) -> dict[str, Any]:
    _check_id(tenant_id)
    return await runtime.call_tenant(tenant_id, "describe")


@router.post("/tenants/{tenant_id}/api-keys", status_code=201)
async def issue_api_key(
    tenant_id: str, who: AdminBy, body: ApiKeyCreate | None = None
) -> dict[str, Any]:
    """Issue another key for the tenant (the secret is shown once, stored only as a hash)."""
    _check_id(tenant_id)
    body = body or ApiKeyCreate()
    return await runtime.call_tenant(tenant_id, "issue_api_key", body.scopes, body.expires_at, who)


@router.get("/tenants/{tenant_id}/export")
async def export_tenant(tenant_id: str, request: Request) -> StreamingResponse:
    """Everything the platform holds about the tenant, as JSON lines: its events (sealed
    secrets and key hashes redacted) and its read-model rows. Recorded in its audit trail."""
    _check_id(tenant_id)
    await runtime.call_tenant(tenant_id, "describe")  # 404 for a tenant that does not exist
    lines = await runtime.query("export_tenant", tenant_id)
    _note(request, "data.exported", tenant_id, {"lines": len(lines)})
    body = (json.dumps(line, default=str) + "\n" for line in lines)
    return StreamingResponse(body, media_type="application/x-ndjson")


@router.delete("/tenants/{tenant_id}")
async def erase_tenant(tenant_id: str, request: Request) -> dict[str, Any]:
    """Erase the tenant: its actor stops, its events and read-model rows are deleted. What
    stays is one `data.erased` entry (who, from where, how much), for the platform admin."""
    _check_id(tenant_id)
    await runtime.call_tenant(tenant_id, "describe")
    await runtime.stop_tenant(tenant_id)
    erased = await runtime.query("erase_tenant", tenant_id)
    _note(request, "data.erased", tenant_id, erased)
    return {"id": tenant_id, "erased": True, **erased}


def _note(request: Request, kind: str, tenant_id: str, detail: dict[str, Any]) -> None:
    """An audit entry for what the platform admin did with a tenant's data."""
    entry = {"kind": kind, "tenant_id": tenant_id, "actor": "platform-admin", "detail": detail}
    security_log.note([entry], client_of(request), request.method, request.url.path)


@router.get("/tenants/{tenant_id}/audit")
async def tenant_audit_trail(tenant_id: str, query: AuditQuery) -> dict[str, Any]:
    """Any tenant's audit trail, an erased tenant's `data.erased` entry included."""
    _check_id(tenant_id)
    return {"entries": await query.entries(tenant_id)}


@router.get("/tenants/{tenant_id}/api-keys")
async def list_api_keys(tenant_id: str) -> dict[str, Any]:
    """The tenant's keys (hint, scopes, expiry, issued, revoked, last used); no secrets."""
    _check_id(tenant_id)
    await runtime.call_tenant(tenant_id, "describe")  # 404 for a tenant that does not exist
    return {"api_keys": await runtime.query("list_keys", tenant_id)}


@router.delete("/tenants/{tenant_id}/api-keys/{key_id}")
async def revoke_api_key(tenant_id: str, key_id: str, who: AdminBy) -> dict[str, Any]:
    """Revoke a key; every ingress replica refuses it within seconds."""
    _check_id(tenant_id)
    return await runtime.call_tenant(tenant_id, "revoke_api_key", key_id, who)


@router.put("/tenants/{tenant_id}/limits")
async def set_limits(tenant_id: str, body: TenantLimitsUpdate, who: AdminBy) -> dict[str, Any]:
    """Set the tenant's limits at runtime; omitted fields take the configured defaults.

    A rate refusal another replica remembers still holds until its Retry-After."""
    _check_id(tenant_id)
    limits = await runtime.call_tenant(tenant_id, "set_limits", body.own(), who)
    admission.refusals.forget(tenant_id)
    return limits


@router.get("/tenants/{tenant_id}/limits")
async def get_limits(tenant_id: str) -> dict[str, Any]:
    """The tenant's effective limits and what is left of them now."""
    _check_id(tenant_id)
    return await runtime.call_tenant(tenant_id, "get_limits")


@router.post("/tenants/{tenant_id}/reference-agents")
async def install_reference_agents(tenant_id: str, who: AdminBy) -> dict[str, Any]:
    """Install the four reference agents of PED 13.1 for the tenant (idempotent)."""
    _check_id(tenant_id)
    definitions = [agent_definition(AgentCreate(**agent)) for agent in REFERENCE_AGENTS]
    return await runtime.call_tenant(tenant_id, "install_agents", definitions, who)


def _check_id(tenant_id: str) -> None:
    if not TENANT_ID.match(tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist")
