"""`/docs`: Swagger UI from the project's own files, with nothing fetched from elsewhere
(no CDN), on the gateway's own OpenAPI document; and rendered by a real browser with every
other host unreachable (when Debian's chromium is installed)."""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from tests.integration.test_graphql_serving import BROWSER, CDN_HOSTS
from tests.support.browser import rendered
from tests.support.client import SQLITE_ONLY, ApiClient


def _references(page: str) -> list[str]:
    return re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', page)


@SQLITE_ONLY
def test_the_api_reference_is_served_with_nothing_remote(gateway: ApiClient) -> None:
    page = gateway.http.get("/docs", headers=BROWSER)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    refs = _references(page.text)
    assert len(refs) == 4, refs  # the icon, the style sheet, two scripts
    base = str(page.url)
    kinds = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}
    for ref in refs:
        url = urljoin(base, ref)
        assert urlsplit(url).netloc == urlsplit(base).netloc, f"{ref} is remote"
        asset = gateway.http.get(url)
        assert asset.status_code == 200, (ref, asset.status_code)
        kind = kinds[ref[ref.rindex(".") :]]
        assert asset.headers["content-type"].startswith(kind) and len(asset.content) > 50
        if kind != "image/png":
            assert not any(host in asset.text for host in CDN_HOSTS), f"{ref} names a CDN"
        if kind == "text/css":
            assert "@import" not in asset.text
            assert not re.search(r"url\(\s*['\"]?(https?:)?//", asset.text)
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
