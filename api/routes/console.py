"""`/console`: the web console for tenants and the platform admin, from the project's own
files (`api/console/dist`, bundled by `make console` from an npm lockfile): no CDN."""

from __future__ import annotations

from pathlib import Path

from api import static_ui

DIST = Path(__file__).resolve().parent.parent / "console" / "dist"
router = static_ui.routes("/console", DIST, "The console", "console")
