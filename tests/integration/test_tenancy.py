"""Tenants, keys, agents and isolation over real HTTP."""

from __future__ import annotations

import uuid

from tests.support.client import SQLITE_ONLY, ApiClient


def test_admin_creates_tenants_and_issues_keys(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Acme")
    assert tenant.api_key.startswith("cbk_")
    reply = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/api-keys",
        json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    )
    assert reply.status_code == 201, reply.text
    second = reply.json()
    assert second["api_key"] != tenant.api_key and second["scopes"] == ["agents:read"]
    # the new key works at once, within its scopes
    listed = gateway.http.get("/api/v1/agents", headers=tenant.headers(second["api_key"]))
    assert listed.status_code == 200 and listed.json() == {"agents": []}
    denied = gateway.http.post(
        "/api/v1/agents",
        json={"name": "x", "model": "gpt-4o-mini"},
        headers=tenant.headers(second["api_key"]),
    )
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_denied"


def test_admin_lists_tenants_newest_first_with_their_live_keys(gateway: ApiClient) -> None:
    made = [gateway.new_tenant(f"Listed {i} {uuid.uuid4().hex[:6]}") for i in range(3)]
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{made[2].id}/api-keys", json={}, headers=gateway.admin
    )
    assert issued.status_code == 201, issued.text
    keys = f"/api/v1/admin/tenants/{made[1].id}/api-keys"
    [key] = gateway.http.get(keys, headers=gateway.admin).json()["api_keys"]
    revoked = gateway.http.delete(f"{keys}/{key['id']}", headers=gateway.admin)
    assert revoked.status_code == 200, revoked.text

    def page(**params: object) -> dict:
        reply = gateway.http.get("/api/v1/admin/tenants", params=params, headers=gateway.admin)
        assert reply.status_code == 200, reply.text
        return reply.json()

    first = page(limit=2)
    assert [t["id"] for t in first["tenants"]] == [made[2].id, made[1].id]
    assert [t["live_keys"] for t in first["tenants"]] == [2, 0]
    assert first["tenants"][0]["name"].startswith("Listed 2") and first["next_before"]
    older = page(limit=2, before=first["next_before"])["tenants"]
    assert older[0]["id"] == made[0].id
    assert gateway.http.get("/api/v1/admin/tenants", headers=made[0].headers()).status_code == 401
    # an erased tenant is no longer listed
    erased = gateway.http.delete(f"/api/v1/admin/tenants/{made[0].id}", headers=gateway.admin)
    assert erased.status_code == 200, erased.text
    assert made[0].id not in {t["id"] for t in page(limit=500)["tenants"]}


def test_a_tenant_installs_the_reference_agents_itself(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    done = gateway.http.post("/api/v1/agents/reference", headers=tenant.headers())
    assert done.status_code == 200, done.text
    assert done.json()["created"] == 4 and len(done.json()["agents"]) == 4
    again = gateway.http.post("/api/v1/agents/reference", headers=tenant.headers()).json()
    assert again["created"] == 0  # idempotent: the same names are left as they are
    listed = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
    names = {a["name"] for a in listed}
    assert "Real Estate Investment Analyzer" in names and len(names) == 4
    reader = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/api-keys", json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    ).json()["api_key"]  # fmt: skip
    denied = gateway.http.post("/api/v1/agents/reference", headers=tenant.headers(reader))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_denied"


@SQLITE_ONLY
def test_admin_routes_need_the_admin_token(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    for headers in ({}, {"Authorization": "Bearer wrong"}, tenant.headers()):
        reply = gateway.http.post("/api/v1/admin/tenants", json={"name": "x"}, headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_failed"
    missing = gateway.http.post(
        f"/api/v1/admin/tenants/{uuid.uuid4()}/api-keys", json={}, headers=gateway.admin
    )
    assert missing.status_code == 404


def test_keys_are_stored_only_as_hashes(gateway: ApiClient) -> None:
    from actors.event_store import EventStore

    tenant = gateway.new_tenant()
    app = EventStore(env=gateway.settings.store_env())
    try:
        notes = app.recorder.select_notifications(start=None, limit=1_000_000)
        assert notes
        blob = b"".join(bytes(n.state) for n in notes)
    finally:
        app.close()
    assert tenant.api_key.encode() not in blob
    assert tenant.api_key[4:20].encode() not in blob


def test_agent_crud(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(
        tenant,
        name="Analyst",
        description="Looks at numbers",
        tags=["finance"],
        parameters={"temperature": 0.1, "max_tokens": 300},
    )
    assert agent["version"] == 1 and agent["tags"] == ["finance"]
    url = f"/api/v1/agents/{agent['id']}"
    got = gateway.http.get(url, headers=tenant.headers()).json()
    assert got["name"] == "Analyst" and got["parameters"] == {"temperature": 0.1, "max_tokens": 300}

    patched = gateway.http.patch(
        url, json={"description": "Looks hard at numbers"}, headers=tenant.headers()
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] == "Looks hard at numbers"
    assert patched.json()["version"] == 2 and patched.json()["name"] == "Analyst"

    listed = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
    assert [a["id"] for a in listed] == [agent["id"]]

    assert gateway.http.delete(url, headers=tenant.headers()).status_code == 200
    assert gateway.http.get(url, headers=tenant.headers()).status_code == 404
    assert gateway.execute(tenant, agent["id"], "hi").status_code == 404
    assert gateway.http.get("/api/v1/agents", headers=tenant.headers()).json() == {"agents": []}


def test_tenants_are_isolated(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = gateway.new_agent(a)
    execution = gateway.execute(a, agent["id"], "hello").json()["execution_id"]

    # B's key presented for A
    cross = {"X-Tenant-ID": a.id, "Authorization": f"Bearer {b.api_key}"}
    reply = gateway.http.get("/api/v1/agents", headers=cross)
    assert reply.status_code == 403 and reply.json()["error"]["type"] == "permission_denied"
    # B asking for A's things by id
    for path in (f"/api/v1/agents/{agent['id']}", f"/api/v1/executions/{execution}"):
        reply = gateway.http.get(path, headers=b.headers())
        assert reply.status_code == 404, path
        assert reply.json()["error"]["type"] == "not_found"
    assert gateway.execute(b, agent["id"], "hello").status_code == 404
    listed = gateway.http.get("/api/v1/executions", headers=b.headers()).json()
    assert listed["executions"] == []


BAD_CREDENTIALS = [
    ({}, 400, "missing_tenant"),
    ({"X-Tenant-ID": "not-a-uuid", "Authorization": "Bearer x"}, 400, "missing_tenant"),
    ({"X-Tenant-ID": "TENANT"}, 400, "missing_tenant"),
    ({"X-Tenant-ID": "{tenant}"}, 401, "authentication_failed"),
    ({"X-Tenant-ID": "{tenant}", "Authorization": "Bearer cbk_nope"}, 401, "authentication_failed"),
    ({"X-Tenant-ID": "{tenant}", "Authorization": "Basic abc"}, 401, "authentication_failed"),
]


def test_missing_or_bad_credentials(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    for headers, status, kind in BAD_CREDENTIALS:
        sent = {k: v.replace("{tenant}", tenant.id) for k, v in headers.items()}
        reply = gateway.http.post(
            f"/api/v1/agents/{agent['id']}/execute", json={"prompt": "hi"}, headers=sent
        )
        assert (reply.status_code, reply.json()["error"]["type"]) == (status, kind), headers


BAD_BODIES = [
    ({"prompt": 42}, "prompt"),
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "blank"),
    ({}, "prompt"),
    ({"prompt": "hi", "surprise": 1}, "surprise"),
    ({"prompt": "hi", "parameters": {"temperature": "hot"}}, "temperature"),
    ({"prompt": "hi", "parameters": {"temperature": 7}}, "temperature"),
    ({"prompt": "hi", "context": [{"role": "wizard", "content": "x"}]}, "role"),
]


def test_bad_execute_bodies_are_clear_400s_and_reach_no_provider(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    before = len(gateway.cluster.emulator.requests)
    for body, fragment in BAD_BODIES:
        reply = gateway.http.post(
            f"/api/v1/agents/{agent['id']}/execute", json=body, headers=tenant.headers()
        )
        assert reply.status_code == 400, (body, reply.text)
        error = reply.json()["error"]
        assert error["type"] == "invalid_request" and fragment in error["message"], body
    assert len(gateway.cluster.emulator.requests) == before
    history = gateway.http.get("/api/v1/executions", headers=tenant.headers()).json()
    assert history["executions"] == []


def test_bad_agents_and_unknown_ids(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    unknown_model = gateway.http.post(
        "/api/v1/agents", json={"name": "x", "model": "cb:nope"}, headers=tenant.headers()
    )
    assert unknown_model.status_code == 400
    assert unknown_model.json()["error"]["type"] == "model_not_found"
    no_name = gateway.http.post(
        "/api/v1/agents", json={"model": "gpt-4o-mini"}, headers=tenant.headers()
    )
    assert no_name.status_code == 400 and "name" in no_name.json()["error"]["message"]
    not_json = gateway.http.post(
        "/api/v1/agents",
        content=b"{not json",
        headers={**tenant.headers(), "content-type": "application/json"},
    )
    assert not_json.status_code == 400
    missing = gateway.execute(tenant, str(uuid.uuid4()), "hello")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    assert (
        gateway.http.get(f"/api/v1/executions/{uuid.uuid4()}", headers=tenant.headers()).status_code
        == 404
    )
