"""Every route with a tenant's resource in it, tried with another tenant's credentials: it
can neither read, run, change nor learn of the resource. The table must name every such route
of /openapi.json, so a new route cannot skip this test."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.graphql import graphql

# (method, path template, body): B's key against A's ids; what B may get back
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/api/v1/agents/{agent_id}", None),
    ("PATCH", "/api/v1/agents/{agent_id}", {"description": "mine now"}),
    ("DELETE", "/api/v1/agents/{agent_id}", None),
    ("POST", "/api/v1/agents/{agent_id}/execute", {"prompt": "steal"}),
    ("POST", "/api/v1/agents/{agent_id}/execute/stream", {"prompt": "steal"}),
    ("GET", "/api/v1/executions/{execution_id}", None),
    ("GET", "/api/v1/executions/{execution_id}/stream", None),
    ("POST", "/api/v1/executions/{execution_id}/cancel", None),
    ("POST", "/api/v1/executions/{execution_id}/feedback", {"score": 0}),
    ("POST", "/api/v1/executions/{execution_id}/judge", {"model": "gpt-4o-mini"}),
    ("GET", "/api/v1/experiments/{experiment_id}", None),
    ("GET", "/api/v1/experiments/{experiment_id}/stream", None),
    ("POST", "/api/v1/experiments/{experiment_id}/cancel", None),
    ("GET", "/api/v1/collaborations/{collaboration_id}", None),
    ("PATCH", "/api/v1/collaborations/{collaboration_id}", {"description": "mine now"}),
    ("DELETE", "/api/v1/collaborations/{collaboration_id}", None),
    ("POST", "/api/v1/collaborations/{collaboration_id}/run", {"inputs": {}}),
    ("POST", "/api/v1/collaborations/{collaboration_id}/run/stream", {"inputs": {}}),
    ("GET", "/api/v1/collaboration-runs/{run_id}", None),
    ("GET", "/api/v1/collaboration-runs/{run_id}/stream", None),
    ("POST", "/api/v1/collaboration-runs/{run_id}/cancel", None),
    ("DELETE", "/api/v1/mcp/servers/{server_id}", None),
    ("POST", "/api/v1/mcp/servers/{server_id}/refresh", None),
    ("GET", "/api/v1/tenants/{tenant_id}/model-mappings", None),
    ("PUT", "/api/v1/tenants/{tenant_id}/model-mappings/{name}", {"candidates": ["gpt-4o-mini"]}),
    ("DELETE", "/api/v1/tenants/{tenant_id}/model-mappings/{name}", None),
    ("GET", "/api/v1/tenants/{tenant_id}/model-policy", None),
    ("PUT", "/api/v1/tenants/{tenant_id}/model-policy", {"allowed_models": ["gpt-4o-mini"]}),
    ("GET", "/api/v1/tenants/{tenant_id}/provider-credentials", None),
    ("PUT", "/api/v1/tenants/{tenant_id}/provider-credentials/{provider}", {"api_key": "sk-x"}),
    ("DELETE", "/api/v1/tenants/{tenant_id}/provider-credentials/{provider}", None),
    ("GET", "/api/v1/budgets/{scope}", None),
    ("PUT", "/api/v1/budgets/{scope}", {"limit_usd": 1.0, "period": "day"}),
    ("DELETE", "/api/v1/budgets/{scope}", None),
]
# routes whose ids are the platform's (admin token only) or not a tenant's resource
NOT_TENANT_RESOURCES = {
    "/api/v1/providers/{provider_id}",
    "/api/v1/admin/config/providers/{name}",
    "/api/v1/admin/config/virtual-models/{name}",
    # a data subject is a name inside the caller's own tenant (B asking for A's subject sees
    # its own, empty: tests/integration/test_subject_erasure.py)
    "/api/v1/subjects/{subject}",
    "/api/v1/subjects/{subject}/export",
}


@dataclass
class Tenants:
    """Tenant A with an agent, an execution and an MCP server, and tenant B."""

    a: Tenant
    b: Tenant
    agent: dict[str, Any]
    done: dict[str, Any]
    ids: dict[str, str]  # what fills the route templates: A's ids


def _a_and_b(gateway: ApiClient) -> Tenants:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = gateway.new_agent(a, model="gpt-4o-mini", name="A's agent")
    done = gateway.execute(a, agent["id"], f"secret-{uuid.uuid4().hex}").json()
    server = gateway.http.post(
        "/api/v1/mcp/servers",
        json={"name": "a-only", "transport": "http", "url": "http://127.0.0.1:9/mcp"},
        headers=a.headers(),
    ).json()
    budget = gateway.http.put(f"/api/v1/budgets/agent:{agent['id']}", headers=a.headers(),
                              json={"limit_usd": 5.0, "period": "month"})  # fmt: skip
    assert budget.status_code == 200, budget.text
    experiment = gateway.http.post(
        "/api/v1/experiments", headers=a.headers(),
        json={"name": "A's", "source": {"agent_id": agent["id"]},
              "variants": [{"name": "v", "model": "gpt-4o-mini"}]},
    ).json()  # fmt: skip
    deadline = time.monotonic() + 30  # ended, so that B's tries see no provider call of A's
    while gateway.http.get(f"/api/v1/experiments/{experiment['id']}",
                           headers=a.headers()).json()["status"] == "running":  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.1)
    collaboration = gateway.http.post(
        "/api/v1/collaborations", headers=a.headers(),
        json={"name": "A's", "steps": [{"id": "s", "agent_id": agent["id"], "input": "go"}]},
    ).json()  # fmt: skip
    run = gateway.http.post(f"/api/v1/collaborations/{collaboration['id']}/run", json={},
                            headers=a.headers()).json()  # fmt: skip
    assert run["status"] == "completed", run
    ids = {"agent_id": agent["id"], "execution_id": done["execution_id"],
           "collaboration_id": collaboration["id"], "run_id": run["run_id"],
           "server_id": server["id"], "tenant_id": a.id, "name": "cb:smart-chat",
           "provider": "openai", "scope": f"agent:{agent['id']}",
           "experiment_id": experiment["id"]}  # fmt: skip
    return Tenants(a, b, agent, done, ids)


@SQLITE_ONLY
def test_the_table_names_every_route_with_a_tenant_resource(gateway: ApiClient) -> None:
    paths = gateway.http.get("/openapi.json").json()["paths"]
    with_ids = {
        (method.upper(), path)
        for path, ops in paths.items()
        for method in ops
        if "{" in path
        and not path.startswith("/api/v1/admin/")
        and path not in NOT_TENANT_RESOURCES
    }
    assert with_ids == {(m, p) for m, p, _ in ROUTES}, "add new routes to ROUTES"


@SQLITE_ONLY
def test_another_tenant_cannot_reach_any_resource_of_a_tenant(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    seeded = _a_and_b(gateway)
    a, b = seeded.a, seeded.b
    calls_before = len(list(emu.requests))
    for method, template, body in ROUTES:
        reply = gateway.http.request(
            method, template.format(**seeded.ids), json=body, headers=b.headers()
        )
        assert reply.status_code in (403, 404), (method, template, reply.status_code, reply.text)
        assert "A's agent" not in reply.text and a.api_key not in reply.text
        # and with A's tenant id in the header, B's key is refused outright
        crossed = gateway.http.request(
            method, template.format(**seeded.ids), json=body,
            headers={**b.headers(), "X-Tenant-ID": a.id},
        )  # fmt: skip
        assert crossed.status_code == 403, (method, template, crossed.text)
    assert len(list(emu.requests)) == calls_before  # B ran nothing on A's behalf
    # A's things are all still there
    assert gateway.http.get(f"/api/v1/agents/{seeded.agent['id']}", headers=a.headers()).is_success


@SQLITE_ONLY
def test_a_tenant_key_is_never_the_admin_credential(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    for path in (f"/api/v1/admin/tenants/{a.id}/export", f"/api/v1/admin/tenants/{a.id}/limits",
                 f"/api/v1/admin/tenants/{a.id}/api-keys", "/api/v1/admin/config",
                 "/api/v1/admin/tenants", "/api/v1/admin/providers"):  # fmt: skip
        assert gateway.http.get(path, headers=b.headers()).status_code == 401


@SQLITE_ONLY
def test_listings_graphql_and_tools_show_another_tenant_only_its_own(gateway: ApiClient) -> None:
    seeded = _a_and_b(gateway)
    b, agent, done = seeded.b, seeded.agent, seeded.done
    listings = (
        ("/api/v1/agents", "agents"),
        ("/api/v1/executions", "executions"),
        ("/api/v1/mcp/servers", "servers"),
        ("/api/v1/audit", "entries"),
    )
    for path, key in listings:
        listed = gateway.http.get(path, headers=b.headers()).json()[key]
        assert agent["id"] not in str(listed) and done["execution_id"] not in str(listed)
    gql = graphql(gateway, b.headers(), "query($id: String!) { agent(id: $id) { id } }",
                  id=agent["id"])  # fmt: skip
    assert gql["data"]["agent"] is None
    tools = gateway.http.get("/api/v1/tools", headers=b.headers()).json()["tools"]
    assert all(t["source"] != "a-only" for t in tools)
