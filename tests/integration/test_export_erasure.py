"""Tenant export (JSON lines, secrets sealed) and erasure (nothing of it left anywhere)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.support.client import ApiClient, Tenant
from tests.support.store import canary_in_store


@dataclass
class Seeded:
    canary: str
    secret: str
    tenant: Tenant
    other: Tenant
    other_agent: dict[str, Any]


def _seed(gateway: ApiClient) -> Seeded:
    """A tenant whose agent, execution and own provider key carry a canary, and another."""
    canary = f"CANARY-{uuid.uuid4().hex}"
    secret = f"sk-{canary}-provider-secret"
    tenant, other = gateway.new_tenant(), gateway.new_tenant()
    agent = gateway.new_agent(tenant, system_prompt=f"Remember {canary}.")
    done = gateway.execute(tenant, agent["id"], f"Say {canary}")
    assert done.status_code == 200 and canary in done.json()["response"]["content"]
    put = gateway.http.put(
        f"/api/v1/tenants/{tenant.id}/provider-credentials/openai",
        json={"api_key": secret}, headers=tenant.headers(),
    )  # fmt: skip
    assert put.status_code == 200, put.text
    other_agent = gateway.new_agent(other)
    return Seeded(canary, secret, tenant, other, other_agent)


def _export(gateway: ApiClient, tenant: Tenant) -> tuple[httpx.Response, list[dict[str, Any]]]:
    exported = gateway.http.get(f"/api/v1/admin/tenants/{tenant.id}/export", headers=gateway.admin)
    assert exported.status_code == 200
    return exported, [json.loads(line) for line in exported.text.splitlines()]


def test_export_holds_everything_but_secrets_and_is_audited(gateway: ApiClient) -> None:
    seeded = _seed(gateway)
    canary, secret, tenant, other = seeded.canary, seeded.secret, seeded.tenant, seeded.other
    exported, lines = _export(gateway, tenant)
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    topics = {line["topic"].rsplit(".", 1)[-1] for line in lines if line["kind"] == "event"}
    assert {"Created", "ApiKeyIssued", "AgentAdded", "Started", "Completed"} <= topics
    assert {"OwnProviderKeySet"} <= topics
    tables = {line["table"] for line in lines if line["kind"] == "row"}
    assert {"tenants", "api_keys", "executions", "audit_log"} <= tables
    assert canary in exported.text  # its prompts, answers and definitions
    assert secret not in exported.text and tenant.api_key not in exported.text
    assert '"key_hash": "[sealed]"' in exported.text
    assert all(other.id not in json.dumps(line) for line in lines)
    # in the store in clear, unless it is encrypted (as the PostgreSQL app is)
    assert canary_in_store(gateway, canary) is not gateway.settings.encrypt_payloads
    ids = {line["aggregate_id"] for line in lines if line["kind"] == "event"}
    assert _events_of(gateway, ids) == len([line for line in lines if line["kind"] == "event"])
    # the export is in the tenant's audit trail, with who and from where
    trail = _trail(gateway, "/api/v1/audit", "data.exported", tenant.headers())
    assert trail[0]["actor"] == "platform-admin" and trail[0]["source"] == "127.0.0.1"
    assert trail[0]["detail"]["lines"] == len(lines)

    # the tenant's own admin key exports the same, and that is in its trail with the key
    own = gateway.http.get("/api/v1/export", headers=tenant.headers())
    assert own.status_code == 200 and own.headers["content-type"].startswith("application/x-nd")
    own_ids = {json.loads(line).get("aggregate_id") for line in own.text.splitlines()}
    assert ids <= own_ids and secret not in own.text and canary in own.text
    keys = f"/api/v1/admin/tenants/{tenant.id}/api-keys"
    reader = gateway.http.post(keys, json={"scopes": ["agents:read"]}, headers=gateway.admin)
    reader = reader.json()
    refused = gateway.http.get("/api/v1/export", headers=tenant.headers(reader["api_key"]))
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_denied"
    deadline = time.monotonic() + 10
    while len(trail) < 2 and time.monotonic() < deadline:
        trail = _trail(gateway, "/api/v1/audit", "data.exported", tenant.headers())
        time.sleep(0.2)
    assert trail[0]["actor"].startswith("key:")
    assert trail[0]["detail"]["path"].endswith("/api/v1/export")


def test_erasure_leaves_nothing_but_one_audit_entry(gateway: ApiClient) -> None:
    seeded = _seed(gateway)
    canary, tenant, other = seeded.canary, seeded.tenant, seeded.other
    headers = tenant.headers()
    _, lines = _export(gateway, tenant)
    ids = {line["aggregate_id"] for line in lines if line["kind"] == "event"}
    assert _events_of(gateway, ids) > 0
    assert canary_in_store(gateway, canary) is not gateway.settings.encrypt_payloads
    # the export's own entry is recorded in a batch: let it land before the erasure
    assert _trail(gateway, "/api/v1/audit", "data.exported", headers)

    erased = gateway.http.delete(f"/api/v1/admin/tenants/{tenant.id}", headers=gateway.admin)
    assert erased.status_code == 200, erased.text
    assert erased.json()["events"] > 5 and erased.json()["aggregates"] >= 3
    assert not canary_in_store(gateway, canary)
    assert _events_of(gateway, ids) == 0
    gone = gateway.http.get(f"/api/v1/admin/tenants/{tenant.id}", headers=gateway.admin)
    assert gone.status_code == 404
    deadline = time.monotonic() + 8
    while gateway.http.get("/api/v1/agents", headers=headers).status_code != 401:
        assert time.monotonic() < deadline, "the erased tenant's key still works"
        time.sleep(0.25)
    assert gateway.execute(other, seeded.other_agent["id"], "still here").status_code == 200
    again = gateway.http.delete(f"/api/v1/admin/tenants/{tenant.id}", headers=gateway.admin)
    assert again.status_code == 404
    # what stays: one entry saying who erased it, from where, and how much
    path = f"/api/v1/admin/tenants/{tenant.id}/audit"
    trail = _trail(gateway, path, "data.erased", gateway.admin)
    assert [e["kind"] for e in gateway.http.get(path, headers=gateway.admin).json()["entries"]] \
        == ["data.erased"]  # fmt: skip
    assert trail[0]["actor"] == "platform-admin" and trail[0]["source"] == "127.0.0.1"
    counts = {k: erased.json()[k]
              for k in ("aggregates", "events", "rows", "payload_keys", "cached_answers")}
    assert trail[0]["detail"] == {**counts, "method": "DELETE", "path": trail[0]["detail"]["path"]}
    assert trail[0]["detail"]["path"].endswith(f"/api/v1/admin/tenants/{tenant.id}")
    assert not canary_in_store(gateway, canary)


def _trail(gateway: ApiClient, path: str, kind: str, headers: dict[str, str]) -> list[dict]:
    """The trail's entries of `kind`, once there are any (refusals and exports are recorded
    in batches about every second)."""
    deadline = time.monotonic() + 10
    while True:
        reply = gateway.http.get(path, params={"kind": kind}, headers=headers)
        assert reply.status_code == 200, reply.text
        if reply.json()["entries"] or time.monotonic() > deadline:
            return reply.json()["entries"]
        time.sleep(0.2)


def _events_of(gateway: ApiClient, aggregate_ids: set[str]) -> int:
    """How many stored events the aggregates have, read from the store's table."""
    ids = [uuid.UUID(i) for i in aggregate_ids]
    if gateway.backend == "sqlite":
        import sqlite3

        path = Path(gateway.settings.data_dir) / "events.sqlite"
        with sqlite3.connect(path) as conn:
            marks = ",".join("?" * len(ids))
            query = f"SELECT count(*) FROM stored_events WHERE originator_id IN ({marks})"
            return conn.execute(query, [i.hex for i in ids]).fetchone()[0]
    with psycopg.connect(gateway.settings.database_url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM circuitbreaker_events WHERE originator_id = ANY(%s)", (ids,)
        ).fetchone()[0]
