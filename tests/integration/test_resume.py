"""Resuming a stream with Last-Event-ID: live, after the end, across replicas and restarts."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import ray

from actors import names
from actors.names import NAMESPACE
from tests.support.client import ApiClient, Tenant
from tests.support.sse import iter_events, read_events, stream


class Watcher:
    """Reads a stream in the background, keeping each event as it arrives."""

    def __init__(self, opened: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.replica = ""
        self.error: Exception | None = None
        self._opened = opened
        self._thread = threading.Thread(target=self._read)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._opened as response:
                assert response.status_code == 200, response.read()
                self.replica = response.headers["x-cb-replica"]
                for event in iter_events(response):
                    if event["event"] != "heartbeat":
                        self.events.append(event)
        except (httpx.HTTPError, AssertionError) as exc:
            self.error = exc

    def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.events) < count:
            assert time.monotonic() < deadline, f"only {len(self.events)} events arrived"
            time.sleep(0.02)

    def join(self) -> list[dict[str, Any]]:
        self._thread.join(timeout=60)
        return self.events


def resume(
    gateway: ApiClient, tenant: Tenant, execution_id: str, after: int | str, avoid: str = ""
) -> Watcher:
    """Resume after `after`; with two replicas, reconnect until it lands on one not `avoid`."""
    for _ in range(40):
        watcher = Watcher(
            gateway.http.stream(
                "GET",
                f"/api/v1/executions/{execution_id}/stream",
                headers={**tenant.headers(), "Last-Event-ID": str(after)},
            )
        )
        deadline = time.monotonic() + 10
        while not watcher.replica and watcher.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if gateway.replicas == 1 or watcher.replica != avoid:
            return watcher
        watcher.join()
    raise AssertionError("every reconnect landed on the same replica")


def comparable(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Events without the timings only the live answer has."""
    out = []
    for e in events:
        data = dict(e["data"])
        if e["event"] == "execution_complete":
            data["metadata"] = {k: v for k, v in data["metadata"].items() if k != "timings_ms"}
        out.append((e.get("id"), e["event"], data))
    return out


def slow_stream(gateway: ApiClient, chunks: int, delay: float) -> tuple[Tenant, str, str]:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"resume-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(
        tag, chunks=[f"c{i} " for i in range(chunks)] + [tag], chunk_delay=delay
    )
    return tenant, agent["id"], tag


def test_resume_during_and_after_the_run_on_another_replica(gateway: ApiClient) -> None:
    tenant, agent_id, tag = slow_stream(gateway, chunks=16, delay=0.1)
    original = Watcher(stream(gateway, tenant, agent_id, tag))
    original.wait_for(4)
    execution_id = original.events[0]["data"]["execution_id"]
    seen = len(original.events)
    live = {
        after: resume(gateway, tenant, execution_id, after, avoid=original.replica)
        for after in (0, 2, seen)
    }
    full = original.join()
    assert original.error is None and full[-1]["event"] == "execution_complete"
    assert [e["id"] for e in full] == list(range(1, len(full) + 1))
    for after, watcher in live.items():
        assert comparable(watcher.join()) == comparable(full[after:]), f"live after {after}"
        if gateway.replicas > 1:
            assert watcher.replica != original.replica
    last = len(full)
    for after in (0, last // 2, last - 1, last):
        replayed = resume(gateway, tenant, execution_id, after, avoid=original.replica).join()
        assert comparable(replayed) == comparable(full[after:]), f"replay after {after}"


def test_resume_after_the_tenant_actor_restarted(gateway: ApiClient) -> None:
    tenant, agent_id, tag = slow_stream(gateway, chunks=6, delay=0.05)
    with stream(gateway, tenant, agent_id, tag) as response:
        full = [e for e in read_events(response) if e["event"] != "heartbeat"]
    execution_id = full[0]["data"]["execution_id"]
    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    for after in (0, 3, len(full)):
        replayed = resume(gateway, tenant, execution_id, after).join()
        assert comparable(replayed) == comparable(full[after:])


def test_get_shows_a_running_stream_with_its_usage_so_far(gateway: ApiClient) -> None:
    # 4 s of stream: the reads below come after its 8th event and well before its end (with
    # 2 s, a slow CI machine once listed it after it had ended)
    tenant, agent_id, tag = slow_stream(gateway, chunks=40, delay=0.1)
    original = Watcher(stream(gateway, tenant, agent_id, tag))
    original.wait_for(8)
    execution_id = original.events[0]["data"]["execution_id"]
    running = gateway.http.get(f"/api/v1/executions/{execution_id}", headers=tenant.headers())
    assert running.status_code == 200
    view = running.json()
    assert view["status"] == "running"
    assert view["usage"]["completion_tokens"] > 0 and view["usage"]["cost_usd"] > 0
    assert view["usage"]["estimated"] is True
    assert view["response"]["content"].startswith("c0 c1 ")
    assert view["last_event_id"] >= 8
    listed = gateway.http.get(
        "/api/v1/executions", params={"status": "running"}, headers=tenant.headers()
    ).json()["executions"]
    assert [e["execution_id"] for e in listed] == [execution_id]
    assert listed[0]["usage"]["completion_tokens"] > 0  # from a checkpoint in the store
    full = original.join()
    estimates = [e for e in full if e["event"] == "usage_update" and e["data"]["estimated"]]
    assert estimates, "no running usage was sent before the end"
    final = full[-1]["data"]
    assert final["response"]["content"].startswith(view["response"]["content"])


def test_resume_refusals_are_typed(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = f"whole-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(tag, content=f"whole {tag}")
    whole = gateway.execute(tenant, agent["id"], tag).json()["execution_id"]

    def get(execution_id: str, last: str = "0", who: Tenant = tenant) -> httpx.Response:
        return gateway.http.get(
            f"/api/v1/executions/{execution_id}/stream",
            headers={**who.headers(), "Last-Event-ID": last},
        )

    assert get(str(uuid.uuid4())).json()["error"]["type"] == "not_found"
    refused = get(whole)
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "conflict"
    bad = get(whole, last="-3")
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
    other = gateway.new_tenant("Other")
    assert get(whole, who=other).status_code == 404

    short = f"short-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(short, chunks=["a ", short])
    with stream(gateway, tenant, agent["id"], short) as response:
        full = read_events(response)
    beyond = get(full[0]["data"]["execution_id"], last=str(len(full) + 5))
    assert beyond.status_code == 200
    events = read_events(beyond)
    assert [e["event"] for e in events] == ["error"] and "id" not in events[0]
    assert events[0]["data"]["type"] == "resume_unavailable"
