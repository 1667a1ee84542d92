"""`/docs`: Swagger UI on this gateway's OpenAPI document, from the project's own files
(`api/docs_ui/dist`, built by `make docs-ui` from an npm lockfile): it works offline."""

from __future__ import annotations

from pathlib import Path

from api import static_ui

DIST = Path(__file__).resolve().parent.parent / "docs_ui" / "dist"
router = static_ui.routes("/docs", DIST, "Swagger UI", "docs-ui")
