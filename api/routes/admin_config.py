"""Platform configuration at runtime (admin token only): virtual models, providers, ingress
limits, reload."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends

from api.admission import Admitting
from api.auth import AdminBy, require_admin
from api.runtime import Rt
from api.streaming import replica_id
from domain.config import VirtualModel
from domain.schemas import check_model_name

router = APIRouter(
    prefix="/api/v1/admin/config", dependencies=[Depends(require_admin)], tags=["admin"]
)


@router.get("")
async def describe(runtime: Rt, admission: Admitting) -> Any:
    """The version, the file's digest and the operators' overrides; and which version the
    answering ingress replica serves (it catches up within seconds)."""
    described = await runtime.config_actor.describe()
    replica = {
        "id": replica_id(),
        "version": runtime.config_version(),
        "ingress": admission.gate.stats(),
    }
    return {**described, "replica": replica}


@router.put("/virtual-models/{name}")
async def set_virtual_model(name: str, body: VirtualModel, by: AdminBy, runtime: Rt) -> Any:
    """Create or replace a virtual model for every tenant; recorded as an event."""
    check_model_name(name)
    definition = body.model_dump(mode="json", exclude_defaults=True)
    definition.update(strategy=body.strategy, candidates=list(body.candidates))
    return await runtime.config_actor.set_virtual_model(name, definition, by)


@router.delete("/virtual-models/{name}")
async def remove_virtual_model(name: str, by: AdminBy, runtime: Rt) -> Any:
    return await runtime.config_actor.remove_virtual_model(name, by)


@router.put("/providers/{name}")
async def set_provider(
    name: str,
    by: AdminBy,
    runtime: Rt,
    settings: dict[str, Any] = Body(...),  # noqa: B008
) -> Any:
    """Change a provider's settings (limits, timeouts, breaker); credentials stay env names."""
    return await runtime.config_actor.set_provider(name, settings, by)


@router.put("/ingress")
async def set_ingress(
    by: AdminBy,
    runtime: Rt,
    settings: dict[str, Any] = Body(...),  # noqa: B008
) -> Any:
    """Change each ingress replica's overload limits (`max_in_flight`, `max_queued`,
    `max_queued_per_tenant`, `max_queue_wait_s`); replicas pick it up within seconds."""
    return await runtime.config_actor.set_ingress(settings, by)


@router.post("/reload")
async def reload(by: AdminBy, runtime: Rt) -> Any:
    """Read `CB_CONFIG` again; a file that fails validation changes nothing."""
    return await runtime.config_actor.reload(by)
