"""The test HTTP client: one backend's app, with helpers that make tenants and agents."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.cluster import ADMIN_TOKEN, REPLICAS, Cluster

# for behaviour the storage backend cannot change (provider codecs, routing, heartbeats…):
# run it against the SQLite app only, which also has two ingress replicas
SQLITE_ONLY = pytest.mark.parametrize("gateway", ["sqlite"], indirect=True)


@dataclass
class Tenant:
    id: str
    api_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-Tenant-ID": self.id, "Authorization": f"Bearer {key or self.api_key}"}


class ApiClient:
    """A test client for one backend's app (the `gateway` fixture), with helpers that make
    tenants and agents. Not to be confused with the `Gateway` Serve deployment it calls."""

    def __init__(self, cluster: Cluster, backend: str) -> None:
        self.backend = backend
        self.cluster = cluster
        self.settings = cluster.settings[backend]
        self.replicas = REPLICAS[backend]
        self.http = httpx.Client(base_url=cluster.url(backend), timeout=60)
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def close(self) -> None:
        self.http.close()

    def new_tenant(self, name: str = "Acme") -> Tenant:
        reply = self.http.post("/api/v1/admin/tenants", json={"name": name}, headers=self.admin)
        assert reply.status_code == 201, reply.text
        body = reply.json()
        return Tenant(body["tenant"]["id"], body["api_key"])

    def new_agent(self, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
        definition = {
            "name": "Helper",
            "model": "cb:smart-chat",
            "system_prompt": "You are a helpful assistant.",
            "parameters": {"temperature": 0.3},
            **overrides,
        }
        reply = self.http.post("/api/v1/agents", json=definition, headers=tenant.headers())
        assert reply.status_code == 201, reply.text
        return reply.json()

    def execute_held(self, tenant: Tenant, agent_id: str, tag: str) -> Callable[[], httpx.Response]:
        """Execute in the background until the emulator holds the request (script a delay for
        `tag` first); returns a function that waits for and gives the reply."""
        result: dict[str, httpx.Response] = {}
        worker = threading.Thread(
            target=lambda: result.update(reply=self.execute(tenant, agent_id, tag))
        )
        worker.start()
        deadline = time.monotonic() + 10
        while not self.cluster.emulator.requests_matching(tag):
            assert time.monotonic() < deadline, "the provider was never called"
            time.sleep(0.02)

        def reply() -> httpx.Response:
            worker.join(timeout=60)
            return result["reply"]

        return reply

    def ended_execution(
        self, tenant: Tenant, execution_id: str, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """The execution as history shows it once it has ended (or as it is at the timeout)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.http.get(f"/api/v1/executions/{execution_id}", headers=tenant.headers())
            if found.status_code == 200 and found.json()["status"] != "running":
                return found.json()
            assert time.monotonic() < deadline, (found.status_code, found.text)
            time.sleep(0.1)

    def kill_tenant_actor(self, tenant: Tenant) -> None:
        """Kill the tenant's actor as a crash does (no restart: the next call starts it)."""
        import ray

        from actors import names

        name = names.tenant_actor_name(self.settings, tenant.id)
        ray.kill(ray.get_actor(name, namespace=names.NAMESPACE), no_restart=True)

    def interrupted_stream(
        self, tenant: Tenant, agent_id: str, tag: str, before: int = 6
    ) -> list[dict[str, Any]]:
        """Stream `tag` (script a slow stream for it first), kill the tenant's actor after
        `before` events, and read the stream on to its end: its events."""
        from tests.support.sse import iter_events

        path = f"/api/v1/agents/{agent_id}/execute/stream"
        events: list[dict[str, Any]] = []
        with self.http.stream("POST", path, json={"prompt": tag}, headers=tenant.headers()) as r:
            for event in iter_events(r):
                if event["event"] == "heartbeat":
                    continue
                events.append(event)
                if len(events) == before:
                    self.kill_tenant_actor(tenant)
        return events

    def execute(self, tenant: Tenant, agent_id: str, prompt: str, **body: Any) -> httpx.Response:
        return self.http.post(
            f"/api/v1/agents/{agent_id}/execute",
            json={"prompt": prompt, **body},
            headers=tenant.headers(),
        )
