"""The gateway's busy processes (ingress replicas, tenant, projection and provider actors) run
with the garbage collector settled (`actors.heap`): what they held once started is frozen,
and the youngest generation is collected less often."""

from __future__ import annotations

import gc
from typing import Any

import ray

from actors import heap, names
from tests.support.client import ApiClient


def _collector(actor: Any) -> tuple[int, int]:
    """The actor process's youngest-generation threshold and its count of frozen objects."""
    return ray.get(  # type: ignore[no-any-return]
        actor.__ray_call__.remote(lambda _: (gc.get_threshold()[0], gc.get_freeze_count())),
        timeout=30,
    )


def test_the_gateways_busy_processes_run_with_the_collector_settled(
    sqlite_gateway: ApiClient,
) -> None:
    gateway = sqlite_gateway
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    assert gateway.execute(tenant, agent["id"], "hello").status_code == 200

    settings = gateway.settings
    tenant_actor = ray.get_actor(names.tenant_actor_name(settings, tenant.id), names.NAMESPACE)
    projection = ray.get_actor(names.projection_actor_name(settings), names.NAMESPACE)
    provider = ray.get_actor(names.provider_actor_name(settings, "openai"), names.NAMESPACE)
    replicas = [
        ray.get_actor(a["name"], namespace=a["namespace"])
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == "serve" and a["name"].startswith("SERVE_REPLICA::")
    ]
    assert replicas, "no ingress replica found"
    for actor in (tenant_actor, projection, provider, *replicas):
        threshold, frozen = _collector(actor)
        assert threshold == heap.YOUNG_THRESHOLD
        assert frozen > 10_000  # its modules and state at least, out of the collector's walks
