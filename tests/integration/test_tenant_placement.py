"""Where tenant actors run, on the session's real Ray: with a per-node cap (a custom resource)
and no node with room, a tenant's actor is given up after `tenant_start_timeout_s` and the
call refused with `capacity_exhausted`. `test_two_nodes.py` places tenants over two real
nodes."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest
import ray

from actors import names
from actors.names import NAMESPACE
from api.clients import PLACEMENT_RETRY_AFTER_S, Actors
from domain.errors import CapacityExhausted
from tests.support.cluster import Cluster


def test_a_tenant_no_node_has_room_for_is_refused_and_its_actor_given_up(
    cluster: Cluster,
) -> None:
    settings = replace(
        cluster.settings["sqlite"], tenant_resource="cb_tenant_none", tenant_start_timeout_s=2.0
    )
    peer = Actors(settings).tenant(f"placement-{uuid.uuid4().hex[:8]}")

    async def twice() -> list[BaseException | str]:
        # two calls at once wait on one start, and both are refused
        return await asyncio.gather(
            peer.ask(lambda h: h.ping.remote()),
            peer.ask(lambda h: h.ping.remote()),
            return_exceptions=True,
        )

    started = time.monotonic()
    refusals = asyncio.run(twice())
    waited = time.monotonic() - started
    assert all(isinstance(r, CapacityExhausted) for r in refusals), refusals
    (refused, _) = refusals
    assert isinstance(refused, CapacityExhausted)
    assert refused.status == 503 and refused.retry_after == PLACEMENT_RETRY_AFTER_S
    assert 2.0 <= waited < 8, waited  # one wait of the timeout, not one per call
    # the pending actor was killed: it will not start later and take a unit nobody uses
    assert names.existing(peer.name) is None
    with pytest.raises(ValueError):
        ray.get_actor(peer.name, namespace=NAMESPACE)
