"""Durability: `kill -9` of every process of a running server, right after a burst of
answered requests, loses none of them from the event store.

The server runs as operators run it (`python serve_app.py`, its own local Ray) against the
session's provider emulator; the burst mixes whole and streamed executions; then every
process of its tree (the ingress, the actors, Ray's own) is killed with SIGKILL at once and
the store is read from disk: every execution whose answer the client got is there, ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from domain.execution import Execution
from tests.emulator import ProviderEmulator
from tests.support.cluster import drop_database, postgres_database, serve_app_port

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "chaos-admin-token"
BURST = 120
CONCURRENCY = 16


def _tree(root: int) -> list[int]:
    """`root` and its live descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _kill_all(root: int) -> int:
    """SIGKILL every process of the tree at once (no graceful anything); how many."""
    pids = _tree(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)


@contextlib.contextmanager
def _server(emulator: ProviderEmulator, tmp: Path, database_url: str | None) -> Iterator[dict]:
    port = serve_app_port()
    # this process's own Serve settings (set when serve_app was imported here) stay here
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "CB_"))}
    env = {
        **inherited,
        "OPENAI_BASE_URL": emulator.base_url,
        "OPENAI_API_KEY": "chaos",
        "CB_ADMIN_TOKEN": ADMIN,
        "CB_PORT": str(port),
        "CB_DATA_DIR": str(tmp / "data"),
        "CB_DATABASE_URL": database_url or "",
        "CB_DEMO": "off",
        "CB_LOCAL_MODEL": "off",
        "CB_INSTANCE": "chaos",
    }
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "serve_app.py"], cwd=ROOT, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield {"proc": proc, "url": f"http://127.0.0.1:{port}", "data_dir": str(tmp / "data")}
    finally:
        _kill_all(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)


def _ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ready", timeout=5).status_code == 200:
                return
        time.sleep(1)
    raise AssertionError("the server was not ready: " + log.read_text(errors="replace")[-3000:])


async def _burst(url: str, headers: dict[str, str], agent_id: str, tag: str) -> list[str]:
    """BURST executions, half streamed; the ids of those the client got a whole answer for."""
    answered: list[str] = []
    gate = asyncio.Semaphore(CONCURRENCY)
    path = f"{url}/api/v1/agents/{agent_id}/execute"

    async def one(http: httpx.AsyncClient, n: int) -> None:
        body = {"prompt": f"{tag} request {n}"}
        async with gate:
            if n % 2:
                reply = await http.post(path, json=body, headers=headers)
                if reply.status_code == 200 and reply.json()["status"] == "completed":
                    answered.append(reply.json()["execution_id"])
                return
            async with http.stream("POST", path + "/stream", json=body, headers=headers) as reply:
                last = None
                async for line in reply.aiter_lines():
                    if line.startswith("data: "):
                        last = json.loads(line[6:])
                if last and last.get("status") == "completed":
                    answered.append(last["execution_id"])

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(one(http, n) for n in range(BURST)))
    return answered


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_kill_9_of_every_process_loses_no_answered_execution(
    backend: str, emulator: ProviderEmulator, tmp_path: Path
) -> None:
    database_url = postgres_database() if backend == "postgres" else None
    if backend == "postgres" and database_url is None:
        pytest.skip("PostgreSQL is not reachable (set CI=true to require it)")
    tag = f"chaos-{backend}-{time.monotonic_ns()}"
    emulator.script(tag, chunks=["durable ", "answer"], prompt_tokens=5, completion_tokens=2)
    try:
        with _server(emulator, tmp_path, database_url) as server:
            url, admin = server["url"], {"Authorization": f"Bearer {ADMIN}"}
            _ready(url, server["proc"], tmp_path / "server.log")
            made = httpx.post(f"{url}/api/v1/admin/tenants", json={"name": "Chaos"},
                              headers=admin, timeout=60).json()  # fmt: skip
            headers = {"X-Tenant-ID": made["tenant"]["id"],
                       "Authorization": f"Bearer {made['api_key']}"}  # fmt: skip
            agent = httpx.post(f"{url}/api/v1/agents", headers=headers, timeout=60,
                               json={"name": "D", "model": "gpt-4o-mini"}).json()  # fmt: skip
            answered = asyncio.run(_burst(url, headers, agent["id"], tag))
            killed = _kill_all(server["proc"].pid)  # right after the last answer
        assert len(answered) == BURST, f"{len(answered)} of {BURST} answered"
        assert killed > 3  # the server, Ray's own processes, the actors
        settings = Settings(instance="chaos", data_dir=server["data_dir"],
                            database_url=database_url)  # fmt: skip
        store = EventStore(env=settings.store_env())
        try:
            ended = [store.repository.get(uuid.UUID(i)) for i in answered]
        finally:
            store.close()
        assert all(isinstance(e, Execution) and e.status == "completed" for e in ended)
        assert all(e.outcome.usage.total_tokens == 7 for e in ended)
    finally:
        if database_url:
            drop_database(database_url)
