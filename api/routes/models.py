"""Models: the tenant's view (`/api/v1/models`, OpenAI's `/v1/models`) and its own mappings.

`GET /v1/models` without credentials lists the platform's public catalog (the legacy SDKs
probe it at start-up with no `Authorization` header): no tenant's mappings, policy or keys."""

from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from api.auth import Caller, Principal, TenantAdmin, key_principal
from api.runtime import Rt
from domain.config import Config, VirtualModel
from domain.schemas import ModelPolicy, ProviderCredential, check_model_name

router = APIRouter(tags=["models"])
MAX_AGE_S = 30  # how long a client may cache what a virtual name resolves to


def _cached_json(request: Request, body: dict[str, Any]) -> Response:
    """JSON with a strong ETag over its content; 304 when the client's copy is current."""
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    etag = '"' + hashlib.sha256(raw).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"private, max-age={MAX_AGE_S}"}
    match = request.headers.get("if-none-match", "")
    if etag in {tag.strip() for tag in match.split(",")} or match.strip() == "*":
        return Response(status_code=304, headers=headers)
    return Response(raw, media_type="application/json", headers=headers)


@router.get("/api/v1/models")
async def list_models(request: Request, who: Caller, runtime: Rt) -> Response:
    """Virtual names (with what each resolves to for this tenant now) and concrete models."""
    who.require("agents:read")
    return _cached_json(request, await runtime.tenant(who.tenant_id).models_view())


async def key_caller_if_any(
    request: Request,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> Principal | None:
    """The key's caller, or None when no `Authorization` header came (a wrong one is 401)."""
    if authorization is None:
        return None
    return await key_principal(request, x_tenant_id, authorization)


def public_models(config: Config) -> dict[str, Any]:
    """OpenAI's model list of the platform's catalog: its virtual names, then its models."""
    data = [
        {"id": name, "object": "model", "created": 0, "owned_by": "circuit-breaker"}
        for name in sorted(config.virtual_models)
    ] + [
        {"id": name, "object": "model", "created": 0, "owned_by": model.provider}
        for name, model in config.models.items()
    ]
    return {"object": "list", "data": data}


@router.get("/v1/models")
async def openai_models(
    request: Request,
    who: Annotated[Principal | None, Depends(key_caller_if_any)],
    runtime: Rt,
) -> Response:
    """OpenAI's model list: the names this tenant can send, virtual ones included; without
    credentials, the platform's public catalog."""
    if who is None:
        return _cached_json(request, public_models(runtime.config()))
    who.require("agents:read")
    view = await runtime.tenant(who.tenant_id).models_view()
    data = [
        {
            "id": m["id"],
            "object": "model",
            "created": 0,
            "owned_by": "circuit-breaker" if m["kind"] == "virtual" else m["provider"],
        }
        for m in view["models"]
    ]
    return _cached_json(request, {"object": "list", "data": data})


@router.put("/api/v1/tenants/{tenant_id}/model-mappings/{name}")
async def set_mapping(
    tenant_id: str, name: str, body: VirtualModel, by: TenantAdmin, runtime: Rt
) -> Any:
    """Map a virtual name to this tenant's own candidates and strategy."""
    check_model_name(name)
    mapping = body.model_dump(mode="json", exclude_defaults=True)
    mapping["candidates"] = list(body.candidates)
    mapping["strategy"] = body.strategy
    return await runtime.tenant(tenant_id).set_model_mapping(name, mapping, by)


@router.put("/api/v1/tenants/{tenant_id}/provider-credentials/{provider}")
async def set_credential(
    tenant_id: str, provider: str, body: ProviderCredential, by: TenantAdmin, runtime: Rt
) -> Any:
    """The tenant's own key for a provider: stored encrypted, never returned, used only for
    this tenant's executions."""
    api_key = body.api_key.get_secret_value()
    return await runtime.tenant(tenant_id).set_own_provider_key(provider, api_key, by)


@router.get("/api/v1/tenants/{tenant_id}/provider-credentials")
async def list_credentials(tenant_id: str, by: TenantAdmin, runtime: Rt) -> Any:
    return await runtime.tenant(tenant_id).list_own_provider_keys()


@router.delete("/api/v1/tenants/{tenant_id}/provider-credentials/{provider}")
async def remove_credential(tenant_id: str, provider: str, by: TenantAdmin, runtime: Rt) -> Any:
    return await runtime.tenant(tenant_id).remove_own_provider_key(provider, by)


@router.get("/api/v1/tenants/{tenant_id}/model-mappings")
async def list_mappings(tenant_id: str, by: TenantAdmin, runtime: Rt) -> Any:
    return await runtime.tenant(tenant_id).list_model_mappings()


@router.delete("/api/v1/tenants/{tenant_id}/model-mappings/{name}")
async def remove_mapping(tenant_id: str, name: str, by: TenantAdmin, runtime: Rt) -> Any:
    return await runtime.tenant(tenant_id).remove_model_mapping(name, by)


@router.put("/api/v1/tenants/{tenant_id}/model-policy")
async def set_policy(tenant_id: str, body: ModelPolicy, by: TenantAdmin, runtime: Rt) -> Any:
    """Which models the tenant's keys may use, parameter defaults, parameter caps."""
    policy = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return await runtime.tenant(tenant_id).set_model_policy(policy, by)


@router.get("/api/v1/tenants/{tenant_id}/model-policy")
async def get_policy(tenant_id: str, by: TenantAdmin, runtime: Rt) -> Any:
    return await runtime.tenant(tenant_id).get_model_policy()
