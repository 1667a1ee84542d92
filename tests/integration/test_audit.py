"""The audit trail: changes and refusals, per tenant, newest first, only for its admins."""

from __future__ import annotations

import time
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant


def _trail(gateway: ApiClient, tenant: Tenant, **params: Any) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/audit", params=params, headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()["entries"]


def _wait_for(gateway: ApiClient, tenant: Tenant, kind: str, count: int = 1) -> list[dict]:
    deadline = time.monotonic() + 10
    while True:
        found = _trail(gateway, tenant, kind=kind)
        if sum(e["count"] for e in found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _changes(gateway: ApiClient, tenant: Tenant) -> dict[str, Any]:
    """An admin issues a read-only key, sets limits and revokes the key; the tenant creates an
    agent and updates it. Returns the issued key."""
    admin = f"/api/v1/admin/tenants/{tenant.id}"
    reader = gateway.http.post(
        f"{admin}/api-keys", json={"scopes": ["agents:read"]}, headers=gateway.admin
    ).json()
    gateway.http.put(f"{admin}/limits", json={"requests_per_minute": 99}, headers=gateway.admin)
    agent = gateway.new_agent(tenant, name="Audited")
    gateway.http.patch(f"/api/v1/agents/{agent['id']}", json={"description": "x"},
                       headers=tenant.headers())  # fmt: skip
    gateway.http.delete(f"{admin}/api-keys/{reader['id']}", headers=gateway.admin)
    return reader


@SQLITE_ONLY  # the audit table on PostgreSQL is exercised by the export test
def test_changes_are_in_the_trail_newest_first_with_who_and_from_where(
    gateway: ApiClient,
) -> None:
    a = gateway.new_tenant("A")
    reader = _changes(gateway, a)

    kinds = [e["kind"] for e in _trail(gateway, a)]
    for kind in ("tenant.created", "api_key.issued", "limits.set", "agent.created",
                 "agent.updated", "api_key.revoked"):  # fmt: skip
        assert kind in kinds, kinds
    assert kinds.index("api_key.revoked") < kinds.index("agent.created")  # newest first
    [limits] = _trail(gateway, a, kind="limits.set")
    assert limits["actor"] == "platform-admin" and limits["detail"]["limits"] == {
        "requests_per_minute": 99
    }
    assert limits["source"] == "127.0.0.1"  # a change says where it came from
    mapped = gateway.http.put(
        f"/api/v1/tenants/{a.id}/model-mappings/cb:audited",
        json={"strategy": "balanced", "candidates": ["gpt-4o-mini"]}, headers=a.headers(),
    )  # fmt: skip
    assert mapped.status_code == 200, mapped.text
    [mapping] = _trail(gateway, a, kind="model_mapping.set")
    assert mapping["actor"].startswith("key:") and mapping["source"] == "127.0.0.1"
    trail = {e["kind"]: e for e in _trail(gateway, a)}  # one entry of each kind
    for kind in ("tenant.created", "api_key.issued", "api_key.revoked"):
        assert trail[kind]["actor"] == "platform-admin", trail[kind]
    for kind in ("agent.created", "agent.updated"):  # made with the tenant's first key
        assert trail[kind]["actor"].startswith("key:"), trail[kind]
    assert {e["source"] for e in trail.values()} == {"127.0.0.1"}  # every change says where
    issued = _trail(gateway, a, kind="api_key.issued")
    assert {e["detail"]["key_id"] for e in issued} >= {reader["id"]}
    assert reader["api_key"] not in str(issued)  # the hint only, never the secret


@SQLITE_ONLY
def test_refusals_are_in_the_trail_of_the_tenant_aimed_at(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    admin = f"/api/v1/admin/tenants/{a.id}"
    # refusals: a bad key, B's key aimed at A, and a key without the scope
    bad = gateway.http.get("/api/v1/agents", headers=a.headers("cbk_not-a-key"))
    assert bad.status_code == 401
    crossed = gateway.http.get("/api/v1/agents", headers={**b.headers(), "X-Tenant-ID": a.id})
    assert crossed.status_code == 403
    weak = gateway.http.post(f"{admin}/api-keys", json={"scopes": ["agents:read"]},
                             headers=gateway.admin).json()  # fmt: skip
    denied = gateway.http.post("/api/v1/agents", json={"name": "n", "model": "auto"},
                               headers=a.headers(weak["api_key"]))  # fmt: skip
    assert denied.status_code == 403

    [failed] = _wait_for(gateway, a, "authentication_failed")
    assert failed["source"] == "127.0.0.1" and failed["detail"]["path"].endswith("/api/v1/agents")
    assert failed["detail"]["reason"] == "unknown key" and failed["actor"] is None
    [attempt] = _wait_for(gateway, a, "cross_tenant_attempt")
    assert attempt["actor"] is None  # A does not learn B's key
    [own] = _wait_for(gateway, b, "cross_tenant_attempt")
    assert own["actor"].startswith("key:") and own["detail"]["target_tenant"] == a.id
    mutation = 'mutation { removeMcpServer(id: "x") }'  # a GraphQL field needing a scope
    gql = gateway.http.post("/graphql", json={"query": mutation},
                            headers=a.headers(weak["api_key"]))  # fmt: skip
    assert "tenant:admin" in gql.json()["errors"][0]["message"]
    denials = _wait_for(gateway, a, "permission_denied", 2)
    by_path = {e["detail"]["path"].rsplit("/", 1)[-1]: e for e in denials}
    assert set(by_path) == {"agents", "graphql"}, denials  # REST and GraphQL alike
    assert {p: e["detail"]["scope"] for p, e in by_path.items()} == {
        "agents": "agents:write", "graphql": "tenant:admin"}  # fmt: skip
    assert all(e["actor"] == f"key:{weak['id']}" for e in denials)


@SQLITE_ONLY
def test_a_tenant_trail_holds_only_its_own_and_only_its_admins_read_it(
    gateway: ApiClient,
) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    _changes(gateway, a)
    assert "limits.set" in {e["kind"] for e in _trail(gateway, a)}

    b_kinds = {e["kind"] for e in _trail(gateway, b)}
    assert "limits.set" not in b_kinds and "agent.created" not in b_kinds
    reader_b = gateway.http.post(
        f"/api/v1/admin/tenants/{b.id}/api-keys", json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    ).json()  # fmt: skip
    no_scope = gateway.http.get("/api/v1/audit", headers=b.headers(reader_b["api_key"]))
    assert no_scope.status_code == 403


@SQLITE_ONLY
def test_repeated_refusals_are_counted_not_stored_again_and_filters_apply(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    before = time.time()
    for _ in range(5):
        gateway.http.get("/api/v1/agents", headers=tenant.headers("cbk_wrong"))
    found = _wait_for(gateway, tenant, "authentication_failed", count=5)
    assert sum(e["count"] for e in found) == 5 and len(found) <= gateway.replicas
    assert _trail(gateway, tenant, kind="authentication_failed", until=before) == []
    assert len(_trail(gateway, tenant, limit=1)) == 1
    ghost = gateway.http.get(
        "/api/v1/agents",
        headers={"X-Tenant-ID": "00000000-0000-0000-0000-000000000000",
                 "Authorization": "Bearer cbk_x"},
    )  # fmt: skip
    assert ghost.status_code == 401  # recorded nowhere: no such tenant


@SQLITE_ONLY
def test_platform_changes_are_on_the_platform_trail_for_the_platform_admin(
    gateway: ApiClient,
) -> None:
    name = f"test:audited-{time.monotonic_ns()}"
    body = {"strategy": "balanced", "candidates": ["gpt-4o-mini"]}
    made = gateway.http.put(f"/api/v1/admin/config/virtual-models/{name}", json=body,
                            headers=gateway.admin)  # fmt: skip
    assert made.status_code == 200, made.text
    gone = gateway.http.delete(f"/api/v1/admin/config/virtual-models/{name}",
                               headers=gateway.admin)  # fmt: skip
    assert gone.status_code == 200, gone.text
    kinds = {"kind": ["config.virtual_model.set", "config.virtual_model.removed"]}
    deadline = time.monotonic() + 10
    while True:
        reply = gateway.http.get("/api/v1/admin/audit", params=kinds, headers=gateway.admin)
        assert reply.status_code == 200, reply.text
        mine = [e for e in reply.json()["entries"] if e["detail"].get("name") == name]
        if len(mine) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    removed, set_ = mine
    assert removed["kind"] == "config.virtual_model.removed"
    assert set_["kind"] == "config.virtual_model.set"
    assert set_["detail"]["definition"]["candidates"] == ["gpt-4o-mini"]
    assert set_["actor"] == "platform-admin" and set_["source"]  # who, and from where
    tenant = gateway.new_tenant()  # a tenant key reads none of it
    refused = gateway.http.get("/api/v1/admin/audit", headers=tenant.headers())
    assert refused.status_code == 401
    own = gateway.http.get("/api/v1/audit", headers=tenant.headers()).json()["entries"]
    assert all(not e["kind"].startswith("config.") for e in own)
