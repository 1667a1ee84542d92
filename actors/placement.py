"""Where a deployment's actors run on a Ray cluster.

Tenant actors go where `Settings` says: Ray's default placement, or spread over the nodes;
with a custom resource, each takes one unit of it, so a node holds at most as many tenant
actors as it declares (`ray start --resources='{"cb_tenant": 200}'`) and only nodes that
declare it hold any. The singletons (config, projection, metrics, one actor per provider
endpoint) stay on the head node: they are one authority each for the whole cluster, and the
head is the node whose loss ends the cluster anyway, so removing a worker never loses their
state (permits, breakers, the projection's position).
"""

from __future__ import annotations

from typing import Any

from actors.settings import Settings

HEAD_RESOURCE = "node:__internal_head__"  # Ray gives the head node one unit of this


def tenant_options(settings: Settings) -> dict[str, Any]:
    """Ray actor options for a tenant actor under `settings`."""
    options: dict[str, Any] = {}
    if settings.tenant_placement == "spread":
        options["scheduling_strategy"] = "SPREAD"
    if settings.tenant_resource:
        options["resources"] = {settings.tenant_resource: 1}
    return options


def singleton_options() -> dict[str, Any]:
    """Ray actor options for an actor the cluster has one of: on the head node."""
    return {"resources": {HEAD_RESOURCE: 0.001}}
