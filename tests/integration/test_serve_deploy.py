"""deploy/serve.yaml as an operator runs it (cluster.yaml's head does the same; the RayService
carries it): `ray start --head` with the secrets in the node's environment, `serve deploy`, an
execution through Serve's proxy; then a runtime change of the ingress's replicas, applied by
Serve to the running application without restarting a replica or failing a request."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.emulator import ProviderEmulator
from tests.support.cluster import free_port
from tests.support.ray_node import (
    RayNode,
    gateway_scaling,
    ray_head,
    serve_cli,
    serve_config,
    wait_until,
)
from tests.support.server_process import environ_without_ours, tenant_and_agent


def _deploy(node: RayNode, config: dict[str, Any], path: Path, environ: dict[str, str]) -> None:
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    serve_cli(node, "deploy", str(path), environ=environ)


def _replicas(base: str, admin: dict[str, str], count: int, calls: int = 40) -> set[str] | None:
    """The ingress replicas that answered `calls` requests through the proxy, if `count`."""
    answered = {
        httpx.get(f"{base}/api/v1/admin/config", headers=admin, timeout=30).json()["replica"]["id"]
        for _ in range(calls)
    }
    return answered if len(answered) == count else None


def test_serve_deploy_runs_the_project_and_scales_it_in_place(
    emulator: ProviderEmulator, tmp_path: Path
) -> None:
    token = uuid.uuid4().hex
    node_env = {  # what /etc/circuit-breaker/secrets.env gives each node
        **environ_without_ours(),
        "OPENAI_API_KEY": "deploy-node-key",
        "CB_ADMIN_TOKEN": token,
        # Ray's token authentication, its token shared by the nodes and the serve CLI
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex,
    }
    port = free_port()
    config = serve_config(port, tmp_path / "data", OPENAI_BASE_URL=emulator.base_url)
    base, admin = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"}
    # a node may hold tenant actors by the units of `cb_tenant` it declares, as cluster.yaml's
    with ray_head(node_env, tmp_path / "ray.log", resources={"cb_tenant": 8}) as node:
        _deploy(node, config, tmp_path / "serve.yaml", node_env)
        wait_until(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200, "/ready")

        # the first tenant actor of a new cluster: seconds under load
        headers, agent = tenant_and_agent(base, admin, "gpt-4.1-mini", timeout_s=120)
        execute = f"{base}/api/v1/agents/{agent['id']}/execute"
        first = httpx.post(execute, json={"prompt": "deployed ping"}, headers=headers, timeout=120)
        assert first.json()["status"] == "completed", first.text
        assert first.json()["response"]["content"] == "Echo: deployed ping"
        sent = emulator.requests_matching("deployed ping")[-1]
        assert sent.headers["authorization"] == "Bearer deploy-node-key"  # the node's secret

        # the file's autoscaling starts at two replicas, both serving through the proxy
        before = wait_until(lambda: _replicas(base, admin, 2), "two replicas")

        # at runtime: three replicas, by a new `serve deploy`, while executions go on
        outcomes: list[int] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(headers=headers, timeout=60) as client:
                while not stop.is_set():
                    reply = client.post(execute, json={"prompt": "during the change"})
                    outcomes.append(reply.status_code)

        runner = threading.Thread(target=load)
        runner.start()
        try:
            gateway_scaling(config).update(min_replicas=3, initial_replicas=3)
            _deploy(node, config, tmp_path / "serve.yaml", node_env)
            after = wait_until(lambda: _replicas(base, admin, 3), "three replicas")
        finally:
            stop.set()
            runner.join(timeout=60)
        assert before < after  # the two kept serving: a change in place, no restart
        assert outcomes and set(outcomes) == {200}, outcomes
        status = yaml.safe_load(serve_cli(node, "status", environ=node_env))
        app = status["applications"]["circuitbreaker"]
        assert app["status"] == "RUNNING"
        assert app["deployments"]["Gateway"]["replica_states"] == {"RUNNING": 3}
