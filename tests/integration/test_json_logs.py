"""`CB_LOG_FORMAT=json` on a real `python serve_app.py` with its own Ray: every line our
processes write (the driver's output, each actor's and replica's worker log, Serve's log
files) is one JSON object with the fields; executions and the 5xx name their ids and
category; no credential and no prompt is in any log file."""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.emulator import ProviderEmulator
from tests.support.server_process import running_server, tenant_and_agent

FIELDS = {"time", "level", "logger", "message", "role", "tenant_id", "execution_id", "trace_id"}
RAY_MARKER = re.compile(r"^:(job_id|actor_name|task_name):")  # Ray's, for its log monitor
OUR_ACTORS = ("TenantActor", "ProviderActor", "ConfigActor", "ProjectionActor", "MetricsActor",
              "ServeReplica:circuitbreaker:Gateway")  # fmt: skip
# Ray's text in the driver's output: the Serve controller's start-up banner (logged before
# Serve applies its logging config) and the raylet's own messages (shutdown, OOM kills)
RAY_TEXT = re.compile(r"^(INFO|WARNING) \S+ \S+ serve \d+ -- |^\s+• |^(\x1b\[\d+m)?\(raylet")


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """A short RAY_TMPDIR of the server's own (Ray's socket paths have a length limit)."""
    path = Path(tempfile.mkdtemp(prefix="cbjson", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _json_lines(path: Path, skip: re.Pattern[str] | None = None) -> list[dict[str, Any]]:
    """Every line of the file as JSON (Ray's marker lines and `skip` lines left out)."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or RAY_MARKER.match(line) or (skip and skip.search(line)):
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{path.name}: not JSON: {line[:300]!r}") from None
    return out


def _actor_of(path: Path) -> str | None:
    match = re.search(r"^:actor_name:(.+)$", path.read_text(errors="replace"), re.MULTILINE)
    return match.group(1) if match else None


def test_json_logs_of_every_process(
    emulator: ProviderEmulator, tmp_path: Path, ray_tmp: Path
) -> None:
    canary = f"CANARY{uuid.uuid4().hex}"
    provider_key, admin_token = f"provider-key-{canary}", f"admin-{canary}"
    emulator.script(f"fail {canary}", status=500, error_body={"error": {"message": canary}})
    with running_server(
        tmp_path,
        CB_DEMO="off",
        CB_LOG_FORMAT="json",
        RAY_TMPDIR=str(ray_tmp),
        OPENAI_API_KEY=provider_key,
        OPENAI_BASE_URL=emulator.base_url,
        CB_ADMIN_TOKEN=admin_token,
    ) as (base, admin, log_path):
        headers, agent = tenant_and_agent(base, admin, "gpt-4o-mini")
        tenant_id = headers["X-Tenant-ID"]
        execute = f"{base}/api/v1/agents/{agent['id']}/execute"
        ok = httpx.post(execute, json={"prompt": f"hello {canary}"}, headers=headers, timeout=60)
        assert ok.status_code == 200, ok.text
        with httpx.stream(
            "POST", execute + "/stream", json={"prompt": f"streamed {canary}"},
            headers=headers, timeout=60,
        ) as reply:  # fmt: skip
            events = [line for line in reply.iter_lines() if line.startswith("event: ")]
        assert events[-1] == "event: execution_complete"
        failed = httpx.post(execute, json={"prompt": f"fail {canary}"}, headers=headers, timeout=60)
        assert failed.status_code == 502, failed.text
        failed_id = failed.json()["error"]["execution_id"]
        wrong_key = {**headers, "Authorization": f"Bearer cbk_{canary}"}
        assert httpx.get(f"{base}/api/v1/agents", headers=wrong_key).status_code == 401
        time.sleep(2)  # worker lines reach the driver through Ray's log monitor

    logs = next((ray_tmp / "ray").glob("session_2*")) / "logs"
    # no credential and no prompt in any log file, Ray's own included
    files = [f for f in logs.rglob("*") if f.is_file()] + [Path(log_path)]
    leaks = [str(f) for f in files if canary.encode() in f.read_bytes()]
    assert not leaks, leaks

    ours: list[dict[str, Any]] = []
    actors = set()
    for path in sorted(logs.glob("worker-*.*")):
        actor = _actor_of(path)
        if actor in OUR_ACTORS:  # Ray's own workers (Serve's controller, proxy) aside
            actors.add(actor)
            ours += _json_lines(path)
    assert set(OUR_ACTORS) - {"MetricsActor"} <= actors, actors
    serve_files = list((logs / "serve").glob("*.log"))  # Serve's own lines, JSON by Serve
    assert serve_files
    for path in serve_files:
        _json_lines(path)
    driver = _json_lines(Path(log_path), skip=RAY_TEXT)

    for line in ours + [d for d in driver if "role" in d]:
        assert FIELDS <= line.keys(), line
    roles = {line["role"] for line in ours} | {line.get("role") for line in driver}
    assert {"tenant", "ingress", "driver"} <= roles, roles
    assert any(d["message"].startswith("Circuit Breaker listening") for d in driver)

    ended = {line["execution_id"]: line for line in ours if line["logger"].endswith("runner")}
    assert list(ended) == [failed_id]  # a success's end line is debug: none at INFO
    assert ended[failed_id]["status"] == "failed" and ended[failed_id]["tenant_id"] == tenant_id
    assert (
        ended[failed_id]["level"] == "WARNING" and ended[failed_id]["error_category"] == "provider"
    )
    refusal = next(line for line in ours if line["role"] == "ingress" and line.get("status") == 502)
    assert refusal["execution_id"] == failed_id and refusal["tenant_id"] == tenant_id
    assert refusal["error_category"] == "provider" and refusal["error_type"] == "provider_error"
    assert refusal["route"] == "/api/v1/agents/{agent_id}/execute"
    # the driver shows the workers' lines as they are (no "(TenantActor pid=…)" prefix)
    assert any(d.get("execution_id") == failed_id and d["role"] == "tenant" for d in driver)
    assert not any(line.get("status") == 401 for line in ours)  # a 4xx: debug only
