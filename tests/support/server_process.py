"""`python serve_app.py` as a child process for tests that need a gateway of their own (the
quick start, TLS): started with exactly the environment given, stopped with SIGTERM, and
required to exit cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def serve_app(environ: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The server process, its output in `log_path`; after the block it must exit 0."""
    log = open(log_path, "w+")
    server = subprocess.Popen(
        [sys.executable, "serve_app.py"],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert code == 0, log_path.read_text()[-3000:]
