"""Browser pages of the test gateway: their files checked to come from the gateway alone,
rendered by headless Debian Chromium with every other host unresolvable (`--dump-dom`), or
driven by Playwright on that same Chromium (no browser download)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CDN_HOSTS = ("unpkg.com", "jsdelivr.net", "cdnjs", "esm.sh", "googleapis.com", "gstatic.com")
# every host but the test gateway's is unresolvable: a page that needs a CDN breaks
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts"
KINDS = {".css": "text/css", ".js": "text/javascript", ".png": "image/png"}


def chromium() -> str:
    """Debian's chromium (skips the test when it is not installed)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return found


def served_locally(http: httpx.Client, path: str, files: int) -> httpx.Response:
    """GET the page at `path` and each of its `files` scripts, style sheets and icons:
    all from this host with the right type, none naming a CDN; a self-only CSP."""
    page = http.get(path, headers=BROWSER)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r'<(?:script|link)\b[^>]*?\b(?:src|href)="([^"]+)"', page.text)
    assert len(refs) == files, refs
    base = str(page.url)
    for ref in refs:
        url = urljoin(base, ref)
        assert urlsplit(url).netloc == urlsplit(base).netloc, f"{ref} is remote"
        asset = http.get(url)
        assert asset.status_code == 200, (ref, asset.status_code)
        kind = KINDS[ref[ref.rindex(".") :]]
        assert asset.headers["content-type"].startswith(kind) and len(asset.content) > 50
        if kind == "image/png":
            continue
        assert not any(host in asset.text for host in CDN_HOSTS), f"{ref} names a CDN"
        if kind == "text/css":
            assert "@import" not in asset.text
            assert not re.search(r"url\(\s*['\"]?(https?:)?//", asset.text)
    return page


def rendered(url: str) -> subprocess.CompletedProcess[str]:
    """`--dump-dom` of `url`: the DOM after scripts ran, and Chromium's log (for CSP
    complaints)."""
    run = subprocess.run(
        [
            chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking", OFFLINE,
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
            "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run


@contextmanager
def driven() -> Iterator[object]:
    """A Playwright browser on Debian's chromium, every other host unreachable."""
    path = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, args=["--no-sandbox", "--disable-gpu", OFFLINE]
        )
        try:
            yield browser
        finally:
            browser.close()
