"""Ray nodes of their own for tests that start the project as operators do (`ray start`, then
`serve deploy`): a head on ports of its own (never 6379, which Redis may hold here) and a temp
dir of its own, so it never meets the session's Ray, and workers joining it from this same
machine on ports of their own; each stopped (or killed, as a lost machine) with everything it
started."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.cluster import free_port

BIN = Path(sys.executable).parent
WORKER_STARTS = 3  # a worker node whose raylet was slow to register is started again
# a bare node exits within ~3 s of SIGTERM; one running a Serve deployment did not within 20 s
# (its graceful drain), so this long, then SIGKILL to its whole session
STOP_WAIT_S = 5


@dataclass(frozen=True)
class RayNode:
    """A running `ray start --block`: its cluster's GCS address and dashboard URL."""

    address: str
    dashboard: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the node and every process it started, as when its machine goes away."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


_WORKER_PORTS = range(20000, 32000)  # below the kernel's ephemeral range, where free_port() picks
_given: list[range] = []


def _worker_range(size: int = 201) -> range:
    """Free ports for a node's workers, outside the range every other port of every node is
    picked from (one node's GCS port inside another's worker range stops `ray start`)."""
    while True:
        low = random.randrange(_WORKER_PORTS.start, _WORKER_PORTS.stop - size)
        ports = range(low, low + size)
        if any(ports.start < r.stop and r.start < ports.stop for r in _given):
            continue
        try:
            for port in ports:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port))
        except OSError:
            continue
        _given.append(ports)
        return ports


def _ports(taken: set[int] | frozenset[int] = frozenset()) -> list[str]:
    """Every port a node opens: free ones (none in `taken`), the workers' range apart."""
    named = (
        "ray-client-server-port",
        "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port",
        "runtime-env-agent-port",
        "metrics-export-port",
        "node-manager-port",
        "object-manager-port",
    )
    workers = _worker_range()
    ports = distinct_free_ports(len(named), taken)
    return [f"--{name}={port}" for name, port in zip(named, ports, strict=True)] + [
        f"--min-worker-port={workers.start}",
        f"--max-worker-port={workers.stop - 1}",
    ]


def distinct_free_ports(count: int, taken: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """`count` free ports, none twice nor in `taken` (nothing binds them until the node
    starts, so the kernel may hand one out again)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and port not in taken:
            ports.append(port)
    return ports


def _resources(resources: dict[str, float] | None) -> list[str]:
    return [f"--resources={json.dumps(resources)}"] if resources else []


@contextmanager
def ray_head(
    environ: dict[str, str],
    log_path: Path,
    num_cpus: int = 2,
    resources: dict[str, float] | None = None,
) -> Iterator[RayNode]:
    """A head node with the dashboard (Serve's REST API for `serve deploy`), its processes
    in `environ` (the secrets of the node's environment), its output in `log_path`."""
    gcs, dashboard = distinct_free_ports(2)
    temp_dir = tempfile.mkdtemp(prefix="cbray-")  # short: Ray's socket paths have a limit
    command = [
        str(BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
        f"--port={gcs}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}", f"--num-cpus={num_cpus}", f"--temp-dir={temp_dir}",
        *_resources(resources), *_ports({gcs, dashboard}),
    ]  # fmt: skip
    address, dashboard_url = f"127.0.0.1:{gcs}", f"http://127.0.0.1:{dashboard}"
    try:
        with _node(command, environ, log_path, address, dashboard_url) as node:
            assert _wait_for_nodes(node, environ, 1), node.log_path.read_text()[-3000:]
            yield node
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@contextmanager
def ray_worker(
    head: RayNode,
    environ: dict[str, str],
    log_path: Path,
    num_cpus: int = 1,
    resources: dict[str, float] | None = None,
) -> Iterator[RayNode]:
    """A worker node joining `head` (its temp dir is the head's, as on one machine)."""
    command = [
        str(BIN / "ray"), "start", "--block", "--disable-usage-stats",
        f"--address={head.address}", f"--num-cpus={num_cpus}", *_resources(resources),
        *_ports(),
    ]  # fmt: skip
    before = len(alive_nodes(head, environ))
    for _ in range(WORKER_STARTS):
        with _node(command, environ, log_path, head.address, head.dashboard) as node:
            if _wait_for_nodes(node, environ, before + 1):
                yield node
                return
    raise AssertionError(f"the worker node gave up {WORKER_STARTS} times: {log_path}")


def _wait_for_nodes(node: RayNode, environ: dict[str, str], count: int) -> bool:
    """Until the cluster counts `count` live nodes (`node` having started the last); False
    if `node` gave up because its raylet did not register in Ray's fixed 30 s (a loaded
    machine: the caller may start it again)."""
    deadline = time.monotonic() + 120
    while len(alive_nodes(node, environ)) < count:
        if node.process.poll() is not None:
            log = node.log_path.read_text()
            assert "timed out during startup" in log, log[-3000:]
            return False
        assert time.monotonic() < deadline, f"fewer than {count} nodes joined"
        time.sleep(0.5)
    return True


@contextmanager
def _node(
    command: list[str], environ: dict[str, str], log_path: Path, address: str, dashboard: str
) -> Iterator[RayNode]:
    log = open(log_path, "w+")
    process = subprocess.Popen(
        command, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    node = RayNode(address, dashboard, log_path, process)
    try:
        _wait_for(node)
        yield node
    finally:
        if process.poll() is None:
            _stop(process)
        else:  # it gave up: what it started (a raylet) may outlive it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _wait_for(node: RayNode, timeout_s: float = 120) -> None:
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
    session for whatever is left after `STOP_WAIT_S`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_WAIT_S)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(1)
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=10)


def ray_list(node: RayNode, what: str, environ: dict[str, str], *filters: str) -> list[Any]:
    """What `ray list <what> --detail --filter key=value…` prints for the node's cluster, as
    JSON rows: the dashboard's state API, asked over HTTP (the CLI is a new Python process
    importing Ray, ~1 s of CPU a call, and the waits here poll it)."""
    params: list[tuple[str, str]] = [("limit", "10000"), ("detail", "true")]
    for condition in filters:
        key, value = condition.split("=", 1)
        params += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
    url = f"{node.dashboard}/api/v0/{what}"
    reply = httpx.get(url, params=params, headers=_auth_headers(environ), timeout=120)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["result"], body.get("msg")
    rows: list[Any] = body["data"]["result"]["result"]
    return rows


def _auth_headers(environ: dict[str, str]) -> dict[str, str]:
    """The token the `ray` CLI would send in `environ`: Ray's token authentication is on by
    default, with a token of the environment's or else the one `ray start` keeps in a file."""
    token = environ.get("RAY_AUTH_TOKEN")
    if not token:
        home = Path(environ.get("HOME") or Path.home())
        path = Path(environ.get("RAY_AUTH_TOKEN_PATH") or home / ".ray" / "auth_token")
        token = path.read_text().strip() if path.is_file() else None
    return {"Authorization": f"Bearer {token}"} if token else {}


def alive_nodes(node: RayNode, environ: dict[str, str]) -> list[str]:
    """The ids of the cluster's nodes Ray counts alive."""
    return [row["node_id"] for row in ray_list(node, "nodes", environ, "state=ALIVE")]


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


def serve_config(port: int, data_dir: Path, **env: str) -> dict[str, Any]:
    """deploy/serve.yaml as a test deploys it: on 127.0.0.1:`port`, the repository's own
    configuration file (the one the manifest names), `data_dir`, text logs, and `env`."""
    import yaml

    root = Path(__file__).resolve().parents[2]
    config: dict[str, Any] = yaml.safe_load((root / "deploy/serve.yaml").read_text("utf-8"))
    config["http_options"].update(host="127.0.0.1", port=port)
    (application,) = config["applications"]
    application["runtime_env"]["env_vars"].update(
        CB_CONFIG=str(root / "config/default.yaml"),
        CB_DATA_DIR=str(data_dir),
        CB_LOG_FORMAT="text",
        **env,
    )
    return config


def gateway_scaling(config: dict[str, Any]) -> dict[str, Any]:
    """The Gateway deployment's autoscaling entry of a Serve config, to change in place."""
    (application,) = config["applications"]
    (gateway,) = application["deployments"]
    scaling: dict[str, Any] = gateway["autoscaling_config"]
    return scaling


def wait_until(check: Any, what: str, timeout_s: float = 180) -> Any:
    """`check()`'s first truthy value, tried each second (an HTTP error counts as none)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")
