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

Each spare registers itself as starting, then ready (a file named by its pid in a directory of
its node under Ray's session directory) and a tenant actor placed on one takes it off, so a
process counts the spares of its node. A replica tops the pool up to `count` at each tenant
actor start (but not during a burst, more than `count` starts within `REFILL_S`: its starts
would take the replacements as they come) and once more when starts have paused for
`REFILL_S`, so the pool is full again after a burst. After `KEEP_ALIVE_S` without use the
spares expire, and the next start fills the pool again. Nothing runs while no tenant actor
starts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray._private import worker as ray_worker
from ray._private.ray_constants import WORKER_PROCESS_SETUP_HOOK_ENV_VAR

log = logging.getLogger(__name__)

PRELOAD = "actors.spare_preload.preload"  # the setup hook, by module path
KEEP_ALIVE_S = 600
REFILL_S = 10.0  # a worker starts and imports in 1.5-5 s here
SPARES_DIR = "cb-spares"  # under the node's Ray session directory, one directory per node
IDLE_TITLE = b"ray::IDLE"  # a Ray worker's process title while it holds no actor
STARTING, READY = "starting", "ready"  # a registered spare's state: its file's suffix
PENDING_S = 3.0  # a worker asked for registers as starting within this (its Python starts)
ASK_AFTER_S = 1.0  # a start takes its spare within this (placed in 0.2-0.5 s here)
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


@dataclass(frozen=True)
class Pool:
    """The spares of a node as registered: importing the actor's code, or ready."""

    starting: int = 0
    ready: int = 0


class SpareWorkers:
    """This process's requests for spare tenant actor workers on its node."""

    def __init__(
        self,
        count: int,
        tenant_resource: str | None = None,
        refill_s: float = REFILL_S,
        pending_s: float = PENDING_S,
        ask_after_s: float = ASK_AFTER_S,
    ) -> None:
        self.count = count
        self.tenant_resource = tenant_resource
        self.refill_s, self.pending_s, self.ask_after_s = refill_s, pending_s, ask_after_s
        self.asked_at: deque[tuple[float, int]] = deque()  # (when, how many) within pending_s
        self.started_at: deque[float] = deque()  # starts seen here within refill_s
        self.last_start = 0.0  # monotonic time of the last start seen here
        self._stub: Any = None
        self._request: Any = None
        self._refilling: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a start while a refill runs
        self._tasks: set[asyncio.Task[None]] = set()

    def started(self) -> None:
        """A tenant actor is being started from this process (it takes a spare if one is
        ready): top the pool up once it has, and again once starts have paused."""
        if self.count <= 0:
            return
        self.last_start = time.monotonic()
        self.started_at.append(self.last_start)
        if self._refilling is not None and not self._refilling.done():
            self._wake.set()  # the running refill asks now, and settles from this start
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # not in an event loop (a script): no spares
        task = loop.create_task(self._refill())
        self._refilling = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def missing(self, pool: Pool, now: float) -> int:
        """How many spares to ask for: what the pool lacks beyond those registered and those
        asked within `pending_s` (not registered yet). None during a burst (more than `count`
        starts within `refill_s`): its starts would take the spares asked as they come, racing
        their own process starts for the CPU; the pool is topped up once starts pause."""
        while self.asked_at and now - self.asked_at[0][0] > self.pending_s:
            self.asked_at.popleft()
        while self.started_at and now - self.started_at[0] > self.refill_s:
            self.started_at.popleft()
        if len(self.started_at) > self.count:
            return 0
        pending = sum(n for _, n in self.asked_at)
        return max(0, self.count - pool.ready - pool.starting - pending)

    async def _refill(self) -> None:
        while True:
            self._wake.clear()
            # after the start has taken its spare, and so that the replacement's imports do
            # not share the CPU with that start's first execution
            await asyncio.sleep(self.ask_after_s)
            pool = await asyncio.to_thread(self.pool)
            now = time.monotonic()
            wanted = self.missing(pool, now)
            if wanted:
                self.asked_at.append((now, wanted))
                await self._prestart(wanted)
            settle = self.last_start + self.refill_s * 1.1 - time.monotonic()
            if settle <= 0:
                return  # the pool was topped up after starts paused
            try:
                await asyncio.wait_for(self._wake.wait(), settle)
            except TimeoutError:
                pass

    def pool(self) -> Pool:
        """This node's spares as registered."""
        directory = spares_dir()
        return Pool() if directory is None else count_spares(directory)

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


def spares_dir() -> Path | None:
    """This node's directory of ready spares; None outside a Ray process."""
    node = ray_worker._global_node
    if node is None:
        return None
    node_id = ray.get_runtime_context().get_node_id()
    return Path(node.get_session_dir_path()) / SPARES_DIR / node_id


def mark(state: str) -> None:
    """Register this process as a spare that is `STARTING` (importing the actor's code) or
    `READY`."""
    directory = spares_dir()
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{os.getpid()}.{state}").touch()
        if state == READY:
            (directory / f"{os.getpid()}.{STARTING}").unlink(missing_ok=True)


def mark_taken() -> None:
    """This process now holds a tenant actor: it is no longer a spare."""
    directory = spares_dir()
    if directory is not None:
        for state in (STARTING, READY):
            (directory / f"{os.getpid()}.{state}").unlink(missing_ok=True)


def count_spares(directory: Path) -> Pool:
    """The registered spares in `directory` that are still idle workers; entries of processes
    that are gone or hold an actor (a spare that expired, or was taken) are removed."""
    counts = {STARTING: 0, READY: 0}
    for entry in directory.glob("[0-9]*.*"):
        pid, _, state = entry.name.partition(".")
        try:
            title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            title = b""
        if title == IDLE_TITLE and state in counts:
            counts[state] += 1
        else:
            entry.unlink(missing_ok=True)
    return Pool(starting=counts[STARTING], ready=counts[READY])


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
