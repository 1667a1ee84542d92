"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.runtime import Rt

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready")
async def ready(runtime: Rt) -> JSONResponse:
    """Ready only when the event store and the actors answer."""
    try:
        await runtime.ready()
    except Exception as exc:  # any failure means not ready; say which kind, nothing more
        return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, 503)
    return JSONResponse({"status": "ready"})
