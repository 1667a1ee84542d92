"""The console's SSE parser (api/console/src/sse.js), by its Node tests: no browser needed."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

CONSOLE = Path(__file__).resolve().parents[2] / "api" / "console"


def test_the_console_parses_the_gateways_event_streams() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node is not installed")
    run = subprocess.run(
        [node, "--test", "test/"], cwd=CONSOLE, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "# fail 0" in run.stdout and "# pass 4" in run.stdout, run.stdout[-2000:]
