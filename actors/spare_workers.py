"""Spare workers for tenant actors: Ray worker processes started ahead of need, with the
tenant actor's code already imported, so a tenant actor placed on one skips the process start
and the imports (1.5 s on a fast day here, 4 s on a slow one; docs/operations.md, "Placing
tenants").

- `actors.spare_preload.preload` is the setup hook of every tenant actor's worker
  (`actor_runtime_env`): it imports the actor's code as the process starts, before it is
  given an actor.
- `SpareWorkers` asks the local raylet (its `PrestartWorkers` call, which Ray's Python API
  does not offer) to start workers of that runtime environment and keep them idle for
  `KEEP_ALIVE_S`. Only a tenant actor's creation matches that environment, so a spare holds
  no tenant's data until one tenant's actor takes it, and the process is that actor's alone
  from then on (it exits with the actor): isolation as with a new process.

A replica fills the pool at its first tenant actor start, and asks for one more spare each
time it starts another (at most `count` per `REFILL_S`); after `KEEP_ALIVE_S` without a start
the spares expire, and the next start fills the pool again. Nothing runs while no tenant
actor starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

import ray
from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

log = logging.getLogger(__name__)

PRELOAD = "actors.spare_preload.preload"  # the setup hook, by module path
KEEP_ALIVE_S = 600
REFILL_S = 10.0  # a worker starts and imports in 1.5-5 s here
RPC_TIMEOUT_S = 10.0

preloaded_at: float | None = None  # when the preload finished in this process (epoch s)


def actor_runtime_env() -> dict[str, Any]:
    """The runtime_env option of a tenant actor: its worker runs `preload` as it starts."""
    return {"env_vars": {WORKER_PROCESS_SETUP_HOOK_ENV_VAR: PRELOAD}}


def merged_runtime_env(parent: str) -> str:
    """The serialized runtime environment of a tenant actor created by a process whose own
    is `parent`: Ray merges the actor's option into it (its env_vars over the parent's) and
    writes it as compact JSON with sorted keys. The raylet matches a spare to an actor by
    this exact string."""
    merged: dict[str, Any] = json.loads(parent) if parent else {}
    env_vars = {**merged.get("env_vars", {}), **actor_runtime_env()["env_vars"]}
    merged["env_vars"] = env_vars
    return json.dumps(merged, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class SpareWorkers:
    """This process's requests for spare tenant actor workers on its node."""

    def __init__(self, count: int, tenant_resource: str | None = None) -> None:
        self.count = count
        self.tenant_resource = tenant_resource
        self.filled_at: float | None = None  # monotonic time of the last full fill
        self.asked_at: deque[float] = deque()  # when replacements were asked for
        self._stub: Any = None
        self._request: Any = None
        self._tasks: set[asyncio.Task[None]] = set()

    def started(self) -> None:
        """A tenant actor was started from this process: it took a spare if one was ready;
        ask for its replacement (or, first or after the spares expired, for the pool).

        At most `count` replacements per `REFILL_S`: in a burst of starts beyond the pool,
        the starts past it pay for their own process, as without spares, rather than also
        racing the replacements for CPU."""
        if self.count <= 0:
            return
        now = time.monotonic()
        expired = self.filled_at is None or now - self.filled_at > KEEP_ALIVE_S * 0.9
        while self.asked_at and now - self.asked_at[0] > REFILL_S:
            self.asked_at.popleft()
        if expired:
            self.filled_at, wanted = now, self.count
        elif len(self.asked_at) < self.count:
            wanted = 1
        else:
            return
        self.asked_at.append(now)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in an event loop (a script): no spares
        task = loop.create_task(self._prestart(wanted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prestart(self, wanted: int) -> None:
        try:
            if self._stub is None:
                found = await asyncio.to_thread(self._request_here)
                if found is None:
                    self.count = 0  # this node takes no tenant actors: never ask again
                    return
                address, self._request = found
                self._stub = _raylet_stub(address)
            self._request.num_workers = wanted
            await self._stub.PrestartWorkers(self._request, timeout=RPC_TIMEOUT_S)
        except Exception as error:  # spares are an optimisation: never fail a start
            log.warning("asking the raylet for %d spare workers failed: %r", wanted, error)

    def _request_here(self) -> tuple[str, Any] | None:
        """The local raylet's address and the request for this process's tenant actors'
        workers; None where tenant actors never run on this node (it lacks their resource)."""
        from ray._private.utils import get_runtime_env_info
        from ray.core.generated import common_pb2, node_manager_pb2
        from ray.runtime_env import RuntimeEnv

        context = ray.get_runtime_context()
        node = next(n for n in ray.nodes() if n["NodeID"] == context.get_node_id())
        if self.tenant_resource and not node["Resources"].get(self.tenant_resource):
            return None
        info = get_runtime_env_info(RuntimeEnv())
        info.serialized_runtime_env = merged_runtime_env(context.get_runtime_env_string())
        request = node_manager_pb2.PrestartWorkersRequest(
            language=common_pb2.Language.PYTHON,
            job_id=bytes.fromhex(context.get_job_id()),
            runtime_env_info=info,
            keep_alive_duration_secs=KEEP_ALIVE_S,
        )
        return f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}", request


def _raylet_stub(address: str) -> Any:
    """An asyncio gRPC stub of a raylet (with Ray's token when its auth is on)."""
    from ray._private.grpc_utils import init_grpc_channel
    from ray.core.generated import node_manager_pb2_grpc

    channel = init_grpc_channel(address, asynchronous=True)
    return node_manager_pb2_grpc.NodeManagerServiceStub(channel)


_spares: SpareWorkers | None = None


def spares(count: int, tenant_resource: str | None) -> SpareWorkers:
    """This process's `SpareWorkers` (one per process, made on first use)."""
    global _spares
    if _spares is None:
        _spares = SpareWorkers(count, tenant_resource)
    return _spares
