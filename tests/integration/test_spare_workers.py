"""A tenant actor started again (after eviction or a crash) takes a spare worker: a process the
raylet started before the request, with the actor's code already imported in it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import ray

from actors import names, spare_workers
from tests.support.client import ApiClient


def _worker(gateway: ApiClient, tenant_id: str) -> dict[str, Any]:
    actor = ray.get_actor(names.tenant_actor_name(gateway.settings, tenant_id), names.NAMESPACE)
    return ray.get(actor.worker.remote(), timeout=30)


def _spares() -> list[int]:
    """Processes of this machine that are spare tenant actor workers: idle Ray workers (Ray
    names one `ray::IDLE`) whose environment runs the tenant actor's preload."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0]
            hook = spare_workers.PRELOAD.encode() in (proc / "environ").read_bytes()
        except (OSError, ValueError):
            continue
        if title == b"ray::IDLE" and hook:
            found.append(int(proc.name))
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return -1
    return int(fields[11]) + int(fields[12])  # utime + stime


def _spares_ready() -> bool:
    """Whether there are spare workers and all are idle: each used under 0.1 s of CPU in the
    last 0.5 s (their imports take a whole core for a second or more)."""
    before = {pid: _cpu_ticks(pid) for pid in _spares()}
    time.sleep(0.5)
    return bool(before) and all(0 <= _cpu_ticks(pid) - ticks < 10 for pid, ticks in before.items())


@pytest.fixture
def gateway(sqlite_gateway: ApiClient) -> ApiClient:
    """The SQLite app's client (every app of the test cluster keeps spare workers)."""
    return sqlite_gateway


def test_a_restarted_tenant_actor_starts_in_a_spare_worker_with_its_code_imported(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    assert gateway.execute(tenant, agent["id"], "hello").status_code == 200
    first = _worker(gateway, tenant.id)

    # the start above asked for spares; wait until they finished their imports
    deadline = time.monotonic() + 90
    while not _spares_ready():
        assert time.monotonic() < deadline, "no spare worker was started"
    gateway.kill_tenant_actor(tenant)

    asked = time.time()
    reply = gateway.execute(tenant, agent["id"], "hello again")
    assert reply.status_code == 200, reply.text
    second = _worker(gateway, tenant.id)
    assert second["pid"] != first["pid"]
    # the process had imported the actor's code before this request asked for an actor
    assert second["preloaded_at"] is not None and second["preloaded_at"] < asked
    assert second["created_at"] > asked
    assert second["loaded_at"] is not None and second["loaded_at"] > second["created_at"]
    # the spare it took is no longer registered, and its replacement is: the pool is full again
    directory = spare_workers.spares_dir()  # this driver's node: the test cluster's one
    assert directory is not None
    deadline = time.monotonic() + 90
    while spare_workers.count_spares(directory).ready < 2:
        assert time.monotonic() < deadline, "the spare taken was not replaced"
        time.sleep(0.2)
    assert not list(directory.glob(f"{second['pid']}.*"))
    print(
        "restart in a spare:",
        {k: round(v - asked, 3) for k, v in second.items() if k != "pid"},
        f"answered after {reply.elapsed.total_seconds():.3f} s",
    )
