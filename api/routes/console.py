"""`/console`: the web console for tenants and the platform admin, from the project's own
files (`api/console/dist`, bundled by `make console` from an npm lockfile): no CDN."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api import static_ui

router = APIRouter(include_in_schema=False)
DIST = Path(__file__).resolve().parent.parent / "console" / "dist"


@router.get("/console")
async def console_page() -> HTMLResponse:
    return static_ui.page(DIST, "The console", "console")


@router.get("/console/{name}")
async def console_asset(name: str) -> Response:
    return static_ui.asset(DIST, name, "console")
