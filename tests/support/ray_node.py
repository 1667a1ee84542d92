"""A Ray node of its own for tests that start the project as operators do (`ray start`, then
`serve deploy`), on ports of its own (never 6379, which Redis may hold here) and a temp dir of
its own, so it never meets the session's Ray; stopped with everything it started."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.cluster import free_port

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class RayNode:
    """A running `ray start --head --block`: its GCS address and dashboard URL."""

    address: str
    dashboard: str
    log_path: Path
    process: subprocess.Popen[bytes]


def _ports() -> list[str]:
    """Every port a node opens, free ones (the worker range above the others)."""
    named = (
        "ray-client-server-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
        "node-manager-port",
        "object-manager-port",
    )
    low = free_port()
    return [f"--{name}={free_port()}" for name in named] + [
        f"--min-worker-port={low}",
        f"--max-worker-port={low + 200}",
    ]


@contextmanager
def ray_head(environ: dict[str, str], log_path: Path, num_cpus: int = 2) -> Iterator[RayNode]:
    """A head node with the dashboard (Serve's REST API for `serve deploy`), its processes
    in `environ` (the secrets of the node's environment), its output in `log_path`."""
    gcs, dashboard = free_port(), free_port()
    temp_dir = tempfile.mkdtemp(prefix="cbray-")  # short: Ray's socket paths have a limit
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
        f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}",
        *_ports(),
    ]  # fmt: skip
    log = open(log_path, "w+")
    process = subprocess.Popen(
        command, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    node = RayNode(f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}", log_path, process)
    try:
        _wait_for(node)
        yield node
    finally:
        _stop(process)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for(node: RayNode, timeout_s: float = 120) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert node.process.poll() is None, node.log_path.read_text()[-3000:]
        try:
            # any answer: with Ray's token authentication (on by default) it may be a 401
            httpx.get(f"{node.dashboard}/api/version", timeout=2)
            return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"no dashboard at {node.dashboard}: {node.log_path.read_text()[-3000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Ray's reaper then ends the node's processes), and SIGKILL to the whole
    session for whatever is left."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def serve_cli(node: RayNode, *args: str, environ: dict[str, str]) -> str:
    """Run the `serve` CLI against the node's dashboard; its output (it must succeed)."""
    done = subprocess.run(
        [str(BIN / "serve"), *args, "--address", node.dashboard],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout
