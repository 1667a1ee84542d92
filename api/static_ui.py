"""Browser pages built from an npm lockfile into a `dist/` folder by `make` and served by the
gateway with no CDN: GraphiQL (`api/graphql/graphiql`), Swagger UI (`api/docs_ui`) and the
console (`api/console`)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

ASSET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*\.(js|css|png)$")
MEDIA_TYPES = {"js": "text/javascript", "css": "text/css", "png": "image/png"}
# the page and its assets come from this gateway only; both UIs style elements inline
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def page(dist: Path, what: str, make_target: str) -> HTMLResponse:
    """`dist/index.html`, or a 503 that says how to build it."""
    index = dist / "index.html"
    if not index.is_file():
        lockfile = dist.parent / "package-lock.json"
        return HTMLResponse(
            f"<!doctype html><title>{what} is not built</title><p>{what}'s files are not built"
            f" on this machine: run <code>make {make_target}</code> (npm, from {lockfile.name}"
            f" in {dist.parent.name}) and reload.</p>",
            status_code=503,
        )
    return HTMLResponse(
        index.read_text(encoding="utf-8"),
        headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"},
    )


def asset(dist: Path, name: str, what: str) -> Response:
    """One built file (scripts, styles, images only; nothing outside `dist`)."""
    path = dist / name
    if not ASSET_NAME.match(name) or not path.is_file():
        raise HTTPException(404, f"no {what} file {name!r}")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]],
        headers={"Cache-Control": "public, max-age=3600"},
    )


def routes(path: str, dist: Path, what: str, make_target: str) -> APIRouter:
    """`GET path` (the page) and `GET path/{name}` (its files), outside the OpenAPI document."""
    router = APIRouter(include_in_schema=False)

    async def serve_page() -> HTMLResponse:
        return page(dist, what, make_target)

    async def serve_asset(name: str) -> Response:
        return asset(dist, name, what)

    router.add_api_route(path, serve_page, methods=["GET"])
    router.add_api_route(f"{path}/{{name}}", serve_asset, methods=["GET"])
    return router
