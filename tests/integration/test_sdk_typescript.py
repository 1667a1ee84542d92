"""The TypeScript SDK (`sdk/typescript`) against the real server: its `npm test` runs with a
tenant of the test cluster in the environment, and its committed schema snapshots must be
what the live server serves (no drift between the SDK's generated types and the API)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.cluster import ADMIN_TOKEN

ROOT = Path(__file__).resolve().parents[2]
SDK = ROOT / "sdk" / "typescript"
REGENERATE = "cd sdk/typescript && npm run generate -- --from <base url of a running server>"


def _require_sdk_deps() -> None:
    """Skip (fail on CI) when `npm ci` has not run in `sdk/typescript`."""
    if (SDK / "node_modules" / "typescript" / "package.json").exists():
        return
    message = "the TypeScript SDK's dev dependencies are not installed: run `make sdk-ts`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@SQLITE_ONLY
def test_the_typescript_sdk_passes_its_npm_tests_against_the_server(gateway: ApiClient) -> None:
    _require_sdk_deps()
    tenant = gateway.new_tenant("TS SDK")
    limited = gateway.new_tenant("TS SDK limited")
    # one request a second, no burst: a second execution at once gets a real 429 with Retry-After
    limits = gateway.http.put(
        f"/api/v1/admin/tenants/{limited.id}/limits",
        json={"requests_per_minute": 60, "burst": 1},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert limits.status_code == 200, limits.text
    slow = f"ts-slow-{uuid.uuid4().hex[:8]}"
    quiet = f"ts-quiet-{uuid.uuid4().hex[:8]}"
    cancel = f"ts-cancel-{uuid.uuid4().hex[:8]}"  # streamed once, then cancelled by id
    gateway.cluster.emulator.script(slow, chunks=[f"w{i} " for i in range(40)], chunk_delay=0.05)
    gateway.cluster.emulator.script(quiet, chunks=["quiet ", "answer"], chunk_delay=2.5)
    gateway.cluster.emulator.script(cancel, chunks=[f"w{i} " for i in range(40)], chunk_delay=0.1)

    # an execution whose tenant actor died mid-stream and which ran again as a second attempt
    restarted = f"ts-restarted-{uuid.uuid4().hex[:8]}"
    restarted_chunks = [f"r{i} " for i in range(20)]
    gateway.cluster.emulator.script(restarted, chunks=restarted_chunks, chunk_delay=0.05)
    agent = gateway.new_agent(tenant)
    seen = gateway.interrupted_stream(tenant, agent["id"], restarted)
    assert [e["event"] for e in seen].count("attempt_restarted") == 1, seen

    env = {
        **os.environ,
        "CB_RESTARTED_EXECUTION": seen[0]["data"]["execution_id"],
        "CB_RESTARTED_TEXT": "".join(restarted_chunks),
        "CB_BASE_URL": gateway.cluster.url(gateway.backend),
        "CB_TENANT_ID": tenant.id,
        "CB_API_KEY": tenant.api_key,
        "CB_LIMITED_TENANT_ID": limited.id,
        "CB_LIMITED_API_KEY": limited.api_key,
        "CB_SLOW_TAG": slow,
        "CB_QUIET_TAG": quiet,
        "CB_CANCEL_TAG": cancel,
    }
    ran = subprocess.run(
        ["npm", "test"], cwd=SDK, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    report = f"stdout:\n{ran.stdout[-6000:]}\nstderr:\n{ran.stderr[-3000:]}"
    assert ran.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", ran.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", ran.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) >= 15, report
    assert failed and int(failed.group(1)) == 0, report

    # what the tests did is on the server: the cut stream was resumed and completed
    listed = gateway.http.get("/api/v1/executions?limit=500", headers=tenant.headers()).json()
    assert any(e["status"] == "cancelled" for e in listed["executions"]), "the abort cancelled one"
    assert sum(1 for e in listed["executions"] if e.get("stream")) >= 5, listed
    # `stream.cancel()` of a resumable stream cut the upstream provider call
    cancelled = gateway.cluster.emulator.requests_matching(cancel)
    assert len(cancelled) == 1 and cancelled[0].client_disconnected, "the upstream call went on"


@SQLITE_ONLY
def test_the_typescript_sdk_schema_snapshots_match_the_live_server(gateway: ApiClient) -> None:
    live = httpx.get(gateway.cluster.url(gateway.backend) + "/openapi.json", timeout=30).json()
    committed = json.loads((SDK / "schema" / "openapi.json").read_text())
    assert live == committed, (
        "the server's OpenAPI differs from sdk/typescript/schema/openapi.json; regenerate the "
        f"SDK's types: {REGENERATE}"
    )
    sdl = (ROOT / "api" / "graphql" / "schema.graphql").read_text()
    assert (SDK / "schema" / "schema.graphql").read_text() == sdl, (
        "api/graphql/schema.graphql (the live schema, held so by its unit test) differs from "
        f"sdk/typescript/schema/schema.graphql; regenerate the SDK's types: {REGENERATE}"
    )
    generated = (SDK / "src" / "generated" / "graphql.ts").read_text()
    for name in re.findall(r"^(?:type|input|enum) (\w+)", sdl, re.MULTILINE):
        assert re.search(rf"export (?:interface|type) {name}\b", generated), (
            f"{name} is not in src/generated/graphql.ts: {REGENERATE}"
        )
    _require_sdk_deps()
    checked = subprocess.run(
        ["node", "scripts/generate.mjs", "--check"],
        cwd=SDK,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, f"{checked.stderr}\nregenerate: {REGENERATE}"
