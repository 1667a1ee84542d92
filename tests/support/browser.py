"""Headless Debian Chromium rendering a page of the test gateway with every other host
unresolvable: the DOM after scripts ran, and Chromium's log (for CSP complaints)."""

from __future__ import annotations

import shutil
import subprocess

import pytest


def rendered(url: str) -> subprocess.CompletedProcess[str]:
    """`--dump-dom` of `url` (skips the test when chromium is not installed)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    run = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-extensions", "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000",
            "--dump-dom", url,
        ],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    return run
