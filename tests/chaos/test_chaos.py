"""The chaos suite on a deployment of its own (`ray start --head`, `serve deploy` with two
ingress replicas, a PostgreSQL server of its own as the store), as operators run it:
`cb chaos` kills a tenant actor, a provider actor and an ingress replica, each under load of
its own, then stops PostgreSQL for a few seconds; then the provider answers 20 % of calls
with a 503 and cuts 20 % of streams. For each: every request ends completed or with a typed
error, and no execution the store accepted is left unfinished (`lost` 0). The figures are
printed (and kept in docs/operations.md)."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import yaml

from chaos.faults import Fault
from chaos.load import PROMPT, RESTARTED, Target, make_tenants
from chaos.run import PhaseReport, run_phase, table
from tests.emulator import ProviderEmulator
from tests.support.cluster import free_port
from tests.support.private_postgres import PrivatePostgres
from tests.support.ray_node import (
    RayNode,
    gateway_scaling,
    ray_head,
    serve_cli,
    serve_config,
    wait_until,
)
from tests.support.server_process import environ_without_ours

ROOT = Path(__file__).resolve().parents[2]
SECONDS = 12.0  # of load per fault


class Deployment(NamedTuple):
    node: RayNode
    target: Target
    env: dict[str, str]  # the node's environment (its secrets)
    config: Path  # the Serve config deployed


@pytest.fixture(scope="module")
def deployment(
    emulator: ProviderEmulator,
    own_postgres: PrivatePostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Deployment]:
    database = own_postgres.url
    tmp_path = tmp_path_factory.mktemp("chaos")
    token = uuid.uuid4().hex
    node_env = {
        **environ_without_ours(),
        "OPENAI_API_KEY": "chaos-node-key",
        "CB_ADMIN_TOKEN": token,
        "CB_DATABASE_URL": database,
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": uuid.uuid4().hex,
    }
    port = free_port()
    config = serve_config(port, tmp_path / "data", OPENAI_BASE_URL=emulator.base_url)
    gateway_scaling(config).update(min_replicas=2, initial_replicas=2, max_replicas=2)
    # executions that take a while, so each kill lands on some mid-way
    emulator.script(PROMPT, delay=0.2, chunk_delay=0.05)
    try:
        with ray_head(node_env, tmp_path / "ray.log", resources={"cb_tenant": 40}) as node:
            path = tmp_path / "serve.yaml"
            path.write_text(yaml.safe_dump(config), encoding="utf-8")
            serve_cli(node, "deploy", str(path), environ=node_env)
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: httpx.get(f"{base}/ready", timeout=5).status_code == 200, "/ready")
            yield Deployment(node, Target(base, token), node_env, path)
    finally:
        emulator.unscript(PROMPT)


def _cb_chaos(deployment: Deployment, *args: str) -> list[PhaseReport]:
    """`cb chaos --json` run as an operator runs it against the deployment; its reports
    (whatever lines Ray printed before or after them). It must exit 0 (nothing lost)."""
    done = subprocess.run(
        [sys.executable, "cli.py", "chaos", "--url", deployment.target.url, "--json",
         "--seconds", str(SECONDS), *args],
        cwd=ROOT,
        env={**deployment.env, "RAY_ADDRESS": deployment.node.address},
        capture_output=True,
        text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.index("[\n") :])
    return [PhaseReport(**row) for row in rows]


def _check(report: PhaseReport) -> None:
    assert report.lost == 0, report
    assert report.store["recorded"] > 0 and report.clients.get("completed", 0) > 0, report
    untyped = [k for k in report.clients if k.startswith("untyped")]
    assert not untyped, report  # every refusal the clients saw had a stable type
    assert "stream_cut:hung" not in report.clients, report  # every stream ended


def test_cb_chaos_kills_one_actor_at_a_time_and_loses_nothing(
    deployment: Deployment,
) -> None:
    reports = _cb_chaos(deployment, "tenant-actor", "provider-actor", "ingress-replica")
    assert [r.fault for r in reports] == ["tenant-actor", "provider-actor", "ingress-replica"]
    for report in reports:
        assert report.injected and report.injected[0].startswith("killed"), report
        _check(report)
    print("\n" + table(reports))
    # what the killed tenant actor was running ran again, and its clients got the answers
    tenant_phase = reports[0].clients
    assert tenant_phase.get(RESTARTED, 0) > 0, reports[0]
    assert "execution_interrupted" not in tenant_phase, reports[0]


def test_a_store_restart_under_load_answers_503_and_loses_nothing(
    deployment: Deployment, own_postgres: PrivatePostgres
) -> None:
    (report,) = _cb_chaos(
        deployment, "store-restart", "--store-down-s", "15",
        "--store-stop", shlex.join(own_postgres.stop_command()),
        "--store-start", shlex.join(own_postgres.start_command()),
    )  # fmt: skip
    assert report.injected[0].startswith("stopped the store"), report
    _check(report)
    print("\n" + table([report]))
    # while it was down, requests were refused as retryable, never as a bug
    assert "internal_error" not in report.clients, report
    assert report.store.get("failed", 0) + report.clients.get("completed_after_retry", 0) > 0, (
        "the outage went unnoticed: no retried request, no failed execution"
    )


def test_a_rolling_upgrade_under_load_fails_no_request(deployment: Deployment) -> None:
    """`serve deploy` of a changed runtime environment (as a new release is) replaces every
    Gateway replica one at a time while clients keep calling: none sees a failure."""
    deployed = deployment.config
    config = yaml.safe_load(deployed.read_text("utf-8"))
    (application,) = config["applications"]
    application["runtime_env"]["env_vars"]["CB_CHAOS_RELEASE"] = uuid.uuid4().hex[:8]
    upgraded = deployed.with_name("serve-upgraded.yaml")
    upgraded.write_text(yaml.safe_dump(config), encoding="utf-8")
    (report,) = _cb_chaos(
        deployment, "rolling-upgrade", "--upgrade-config", str(upgraded),
        "--dashboard-url", deployment.node.dashboard,
    )  # fmt: skip
    print("\n" + table([report]) + f"\n{report.injected}")
    assert report.injected[0].startswith("rolled 2 Gateway replicas"), report
    _check(report)
    failed = {k: v for k, v in report.clients.items() if not k.startswith("completed")}
    assert not failed, report  # zero failed requests (the clients' retries included)


def test_a_flaky_provider_loses_nothing_and_service_comes_back_by_itself(
    deployment: Deployment, emulator: ProviderEmulator
) -> None:
    target = deployment.target

    def flaky() -> str:
        emulator.script(PROMPT, delay=0.2, fail_after_chunks=1, chunk_delay=0.05, probability=0.2)
        emulator.script(PROMPT, status=503, probability=0.2)
        return "the provider answers 20 % of calls 503 and cuts 20 % of the rest mid-answer"

    try:
        report = run_phase(target, lambda *_: Fault("provider-flaky", flaky), seconds=SECONDS)
    finally:
        emulator.unscript(PROMPT)
        emulator.script(PROMPT, delay=0.2, chunk_delay=0.05)
    _check(report)
    print("\n" + table([report]))
    # the provider is well again: executions complete again, with nobody resetting anything
    (tenant,) = make_tenants(target, 1, "gpt-4.1-mini")
    execute = f"{target.url}/api/v1/agents/{tenant.agent_id}/execute"
    deadline = time.monotonic() + 120
    while True:
        reply = httpx.post(execute, json={"prompt": PROMPT}, headers=tenant.headers, timeout=60)
        if reply.status_code == 200:
            break
        assert reply.json()["error"]["type"] in ("no_model_available", "provider_circuit_open")
        assert time.monotonic() < deadline, "the breaker never closed after the provider healed"
        time.sleep(2)
    assert reply.json()["status"] == "completed"
