"""`/docs`: Swagger UI from the project's own files, with nothing fetched from elsewhere
(no CDN), on the gateway's own OpenAPI document; and rendered by a real browser with every
other host unreachable (when Debian's chromium is installed)."""

from __future__ import annotations

from urllib.parse import urljoin

from tests.support.browser import rendered, served_locally
from tests.support.client import SQLITE_ONLY, ApiClient


@SQLITE_ONLY
def test_the_api_reference_is_served_with_nothing_remote(gateway: ApiClient) -> None:
    page = served_locally(gateway.http, "/docs", files=4)  # icon, style sheet, two scripts
    base = str(page.url)
    init = gateway.http.get(urljoin(base, "docs/init.js")).text
    assert 'url: "openapi.json"' in init and "validatorUrl: null" in init
    assert gateway.http.get(urljoin(base, "openapi.json")).json()["info"]["title"]
    for name in ("nothing.js", "..%2Fapp.py", "index.html", ".built", "init.js.map"):
        assert gateway.http.get(f"/docs/{name}").status_code == 404, name
    assert gateway.http.get("/redoc").status_code == 404  # its page would load a CDN


@SQLITE_ONLY
def test_the_api_reference_renders_with_every_other_host_unreachable(gateway: ApiClient) -> None:
    run = rendered(str(gateway.http.base_url).rstrip("/") + "/docs")
    dom = run.stdout
    assert "swagger-ui" in dom and "opblock" in dom, dom[:2000]  # the operations rendered
    assert "/api/v1/collaborations" in dom
    assert "Content Security Policy" not in run.stderr, run.stderr[-2000:]
