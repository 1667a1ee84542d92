"""No credential and no prompt ever reaches a log file of the cluster (Ray's and ours), nor,
with payload encryption on, the database in clear."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import ray

from tests import jwt_keys
from tests.support.client import ApiClient
from tests.support.cluster import ADMIN_TOKEN
from tests.support.sse import read_events, stream
from tests.support.store import canary_in_store


def test_no_secret_or_prompt_is_written_to_any_log(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    canary = f"CANARY-{uuid.uuid4().hex}"
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", system_prompt=f"never log {canary}")
    assert gateway.execute(tenant, agent["id"], f"prompt {canary}").status_code == 200
    with stream(gateway, tenant, agent["id"], f"streamed {canary}") as reply:
        read_events(reply)
    failing = f"fail-{canary}"
    emu.script(failing, status=500, error_body={"error": {"message": f"boom {canary}"}})
    assert gateway.execute(tenant, agent["id"], failing).status_code >= 400
    own_key = f"sk-own-{canary}"
    gateway.http.put(
        f"/api/v1/tenants/{tenant.id}/provider-credentials/openai",
        json={"api_key": own_key}, headers=tenant.headers(),
    )  # fmt: skip
    gateway.http.get("/api/v1/agents", headers=tenant.headers("cbk_wrong-key"))
    time.sleep(1.5)  # log lines are flushed asynchronously

    logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    secrets = {
        "provider key": "test-provider-key",
        "anthropic key": "test-anthropic-key",
        "admin token": ADMIN_TOKEN,
        "jwt secret": jwt_keys.SECRET,
        "tenant api key": tenant.api_key,
        "tenant's own provider key": own_key,
        "prompt": canary,
    }
    files = [f for f in logs.rglob("*") if f.is_file()]
    assert len(files) > 5
    found = {
        (name, str(f.relative_to(logs)))
        for f in files
        for name, value in secrets.items()
        if value.encode() in f.read_bytes()
    }
    assert not found, found
    # the database: the PostgreSQL app encrypts payloads, so neither the prompts and answers
    # nor the tenant's own key are there in clear; the SQLite app keeps prompts in clear
    assert canary_in_store(gateway, canary) is not gateway.settings.encrypt_payloads
    assert not canary_in_store(gateway, own_key)  # sealed either way
