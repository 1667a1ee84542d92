"""`/docs`: Swagger UI on this gateway's OpenAPI document, from the project's own files
(`api/docs_ui/dist`, built by `make docs-ui` from an npm lockfile): it works offline."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from api import static_ui

router = APIRouter(include_in_schema=False)
DIST = Path(__file__).resolve().parent.parent / "docs_ui" / "dist"


@router.get("/docs")
async def docs_page() -> HTMLResponse:
    return static_ui.page(DIST, "Swagger UI", "docs-ui")


@router.get("/docs/{name}")
async def docs_asset(name: str) -> Response:
    return static_ui.asset(DIST, name, "Swagger UI")
