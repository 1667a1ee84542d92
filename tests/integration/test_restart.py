"""State survives a restart: every actor and the ingress replaced, rebuilt from the store."""

from __future__ import annotations

import time

import ray
from ray import serve

import serve_app
from actors import names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient


def restart(gateway: ApiClient) -> None:
    """Kill every actor of this instance and redeploy its ingress."""
    serve.delete(gateway.backend)
    for name in names.instance_actor_names(gateway.settings):
        ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    prefix = gateway.cluster.route_prefix(gateway.backend)
    application = serve_app.build(gateway.settings, replicas=gateway.replicas)
    serve.run(application, name=gateway.backend, route_prefix=prefix)


def test_tenants_agents_keys_and_history_survive_a_restart(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Durable")
    agent = gateway.new_agent(tenant, name="Keeper")
    done = gateway.execute(tenant, agent["id"], "remember me").json()
    failed_tag = "restart-fail-marker"
    gateway.cluster.emulator.script(failed_tag, status=400, times=1)
    failed = gateway.execute(tenant, agent["id"], failed_tag).json()["execution_id"]

    restart(gateway)

    assert not any(":tenant:" in n for n in names.instance_actor_names(gateway.settings))
    got = gateway.http.get(f"/api/v1/agents/{agent['id']}", headers=tenant.headers())
    assert got.status_code == 200 and got.json()["name"] == "Keeper"
    history = gateway.http.get(
        "/api/v1/executions", params={"agent_id": agent["id"]}, headers=tenant.headers()
    ).json()["executions"]
    assert {e["execution_id"]: e["status"] for e in history} == {
        done["execution_id"]: "completed",
        failed: "failed",
    }
    again = gateway.execute(tenant, agent["id"], "still here?")
    assert again.status_code == 200 and again.json()["status"] == "completed"


@SQLITE_ONLY
def test_an_idle_tenant_actor_is_evicted_and_comes_back_on_demand(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Sleepy")
    agent = gateway.new_agent(tenant)
    name = names.tenant_actor_name(gateway.settings, tenant.id)
    assert name in names.instance_actor_names(gateway.settings)
    deadline = time.monotonic() + 4 * gateway.settings.tenant_idle_evict_s
    while name in names.instance_actor_names(gateway.settings):
        assert time.monotonic() < deadline, "the idle tenant actor was never evicted"
        time.sleep(1)
    reply = gateway.execute(tenant, agent["id"], "wake up")
    assert reply.status_code == 200 and reply.json()["status"] == "completed"
    assert name in names.instance_actor_names(gateway.settings)
