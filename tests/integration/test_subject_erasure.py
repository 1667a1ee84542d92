"""Per-subject erasure by crypto-shredding, and retention sweeps, through the gateway on
SQLite and PostgreSQL: the subject's prompts and answers are unreadable everywhere after,
the other subjects' data is intact, and the numbers analysts see do not move."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
from circuit_breaker import Client

from actors import projection_actor
from actors.replies import unwrap
from domain import shredding
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import read_events, stream
from tests.support.store import canary_in_store


def _subject(gateway: ApiClient, tenant: Tenant, subject: str) -> dict[str, Any]:
    reply = gateway.http.get(f"/api/v1/subjects/{subject}", headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()


def _usage(gateway: ApiClient, tenant: Tenant) -> dict[str, Any]:
    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60)}
    reply = gateway.http.get("/api/v1/analytics/usage", params=params, headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    [row] = reply.json()["rows"]
    return {k: row[k] for k in ("executions", "prompt_tokens", "completion_tokens", "cost_usd")}


def _trail(gateway: ApiClient, tenant: Tenant, kind: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        reply = gateway.http.get("/api/v1/audit", params={"kind": kind}, headers=tenant.headers())
        assert reply.status_code == 200, reply.text
        if reply.json()["entries"] or time.monotonic() > deadline:
            return reply.json()["entries"]
        time.sleep(0.2)


def _chat(gateway: ApiClient, tenant: Tenant, text: str, user: str) -> dict[str, Any]:
    reply = gateway.http.post(
        "/v1/chat/completions",
        json={"model": "cb:smart-chat", "user": user,
              "messages": [{"role": "user", "content": text}]},
        headers=tenant.headers(),
    )  # fmt: skip
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_erasing_a_subject_shreds_its_payload_everywhere_and_nothing_else(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    ada, bob = f"ada-{uuid.uuid4().hex}@example.com", f"bob-{uuid.uuid4().hex}"
    gone, kept, plain = (f"{name}-{uuid.uuid4().hex}" for name in ("GONE", "KEPT", "PLAIN"))

    whole = gateway.execute(tenant, agent["id"], f"Say {gone}", subject=ada)
    assert whole.status_code == 200 and gone in whole.json()["response"]["content"]
    with stream(gateway, tenant, agent["id"], f"Stream {gone}", subject=ada) as response:
        events = read_events(response)
    assert events[-1]["event"] == "execution_complete"
    _chat(gateway, tenant, f"Chat {gone}", ada)  # OpenAI's `user` names the subject too
    other = gateway.execute(tenant, agent["id"], f"Say {kept}", subject=bob).json()
    anyone = gateway.execute(tenant, agent["id"], f"Say {plain}").json()
    streamed_id = events[-1]["data"]["execution_id"]
    gateway.ended_execution(tenant, streamed_id)

    listed = _subject(gateway, tenant, ada)
    assert len(listed["executions"]) == 3
    assert all(gone in json.dumps(e["input"]) for e in listed["executions"])
    assert listed["subject_ref"] == shredding.subject_ref(tenant.id, ada)
    exported = gateway.http.get(f"/api/v1/subjects/{ada}/export", headers=tenant.headers())
    assert exported.status_code == 200 and gone in exported.text and kept not in exported.text
    lines = [json.loads(line) for line in exported.text.splitlines()]
    assert {line["kind"] for line in lines} == {"execution", "event"}
    # sealed from the first write: in no file or row in clear, nor the subject's id
    assert not canary_in_store(gateway, gone) and not canary_in_store(gateway, ada)
    usage = _usage(gateway, tenant)

    erased = gateway.http.delete(f"/api/v1/subjects/{ada}", headers=tenant.headers())
    assert erased.status_code == 200, erased.text
    assert erased.json()["executions"] == 3 and erased.json()["keys_destroyed"] >= 1

    for execution in _subject(gateway, tenant, ada)["executions"]:
        assert execution["payload"] == "erased" and execution["input"] == {"erased": True}
        assert execution["response"]["content"] == shredding.ERASED
        assert execution["usage"]["total_tokens"] > 0  # the numbers stay
    shown = gateway.http.get(
        f"/api/v1/executions/{whole.json()['execution_id']}", headers=tenant.headers()
    ).json()
    assert shown["status"] == "completed" and shown["payload"] == "erased"
    numbers = ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
    assert {k: shown["usage"][k] for k in numbers} == {k: whole.json()["usage"][k] for k in numbers}
    again = gateway.http.get(f"/api/v1/subjects/{ada}/export", headers=tenant.headers())
    assert again.status_code == 200 and gone not in again.text
    replay = {**tenant.headers(), "Last-Event-ID": "0"}
    resumed = gateway.http.get(f"/api/v1/executions/{streamed_id}/stream", headers=replay)
    assert resumed.status_code == 200 and gone not in resumed.text
    assert not canary_in_store(gateway, gone)

    # the others' data reads as it was; the analytics do not move
    assert gateway.ended_execution(tenant, other["execution_id"])["response"]["content"] \
        == other["response"]["content"]  # fmt: skip
    assert gateway.ended_execution(tenant, anyone["execution_id"])["response"]["content"] \
        == anyone["response"]["content"]  # fmt: skip
    assert _usage(gateway, tenant) == usage
    [entry] = _trail(gateway, tenant, "subject.erased")
    assert entry["actor"].startswith("key:") and entry["source"] == "127.0.0.1"
    assert entry["detail"]["executions"] == 3 and ada not in json.dumps(entry)

    # the subject may come back: a new key, readable until erased again
    back = gateway.execute(tenant, agent["id"], f"Say {kept}-again", subject=ada).json()
    assert gateway.ended_execution(tenant, back["execution_id"])["response"]["content"] \
        == back["response"]["content"]  # fmt: skip


def test_subject_routes_need_tenant_admin_and_check_their_input(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    keys = f"/api/v1/admin/tenants/{tenant.id}/api-keys"
    reader = gateway.http.post(keys, json={"scopes": ["agents:read"]}, headers=gateway.admin)
    headers = tenant.headers(reader.json()["api_key"])
    for method in ("GET", "DELETE"):
        refused = gateway.http.request(method, "/api/v1/subjects/ada", headers=headers)
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_denied"
    bad = gateway.http.put("/api/v1/retention", json={"payload_days": 3, "metrics_days": 1},
                           headers=tenant.headers())  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"
    assert "metrics_days" in bad.json()["error"]["message"]
    long = gateway.execute(tenant, str(uuid.uuid4()), "hi", subject="x" * 300)
    assert long.status_code == 400 and "subject" in long.json()["error"]["message"]


@SQLITE_ONLY
def test_a_subject_is_a_name_inside_its_tenant(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = gateway.new_agent(a)
    canary = f"MINE-{uuid.uuid4().hex}"
    done = gateway.execute(a, agent["id"], f"Say {canary}", subject="shared-name").json()
    assert _subject(gateway, b, "shared-name")["executions"] == []  # B's own, empty
    exported = gateway.http.get("/api/v1/subjects/shared-name/export", headers=b.headers())
    assert exported.status_code == 200 and canary not in exported.text
    erased = gateway.http.delete("/api/v1/subjects/shared-name", headers=b.headers()).json()
    assert erased["executions"] == 0 and erased["keys_destroyed"] == 0
    crossed = gateway.http.get("/api/v1/subjects/shared-name",
                               headers={**b.headers(), "X-Tenant-ID": a.id})  # fmt: skip
    assert crossed.status_code == 403
    shown = gateway.ended_execution(a, done["execution_id"])
    assert shown["response"]["content"] == done["response"]["content"]  # A's is untouched


def _sweep(gateway: ApiClient, now: float) -> list[dict[str, Any]]:
    actor = projection_actor.handle(gateway.settings)
    import ray

    return unwrap(ray.get(actor.sweep_retention.remote(now)))


def test_retention_sweeps_exactly_what_expired(gateway: ApiClient) -> None:
    tenant, keeper = gateway.new_tenant(), gateway.new_tenant()
    set_ = gateway.http.put("/api/v1/retention", json={"payload_days": 1, "metrics_days": 2},
                            headers=tenant.headers())  # fmt: skip
    assert set_.status_code == 200, set_.text
    assert set_.json()["retention"] == {"payload_days": 1, "metrics_days": 2}
    agent, kept_agent = gateway.new_agent(tenant), gateway.new_agent(keeper)
    canary = f"RETAINED-{uuid.uuid4().hex}"
    started = time.time()
    done = [gateway.execute(tenant, agent["id"], f"Say {canary} {i}").json() for i in range(2)]
    forever = gateway.execute(keeper, kept_agent["id"], f"Say {canary} forever").json()
    ran = time.time()  # every execution above started before this (a slow machine: seconds on)
    hour = shredding.bucket(started)
    if shredding.bucket(time.time()) != hour:
        pytest.skip("the executions straddled an hour; the boundary below is per hour")
    assert not canary_in_store(gateway, canary + " 0")  # a retention tenant's payload is sealed

    # a second before the hour has ended a day ago: nothing has expired
    first = _sweep(gateway, hour + 3600 + 86400 - 1)
    mine = [s for s in first if s["tenant_id"] == tenant.id]
    assert mine and mine[0]["payload_keys"] == 0 and mine[0]["executions"] == 0
    shown = gateway.ended_execution(tenant, done[0]["execution_id"])
    assert shown["response"]["content"] == done[0]["response"]["content"]
    # at that moment it has: the payloads go, the executions and their numbers stay
    second = [s for s in _sweep(gateway, hour + 3600 + 86400) if s["tenant_id"] == tenant.id]
    assert second[0]["payload_keys"] == 1 and second[0]["executions"] == 0
    for execution in done:
        shown = gateway.ended_execution(tenant, execution["execution_id"])
        assert shown["payload"] == "erased" and shown["usage"]["total_tokens"] > 0
    # two days on, the executions themselves go; the tenant without retention keeps all
    third = [s for s in _sweep(gateway, ran + 2 * 86400 + 1) if s["tenant_id"] == tenant.id]
    assert third[0]["executions"] == 2
    gone = gateway.http.get(f"/api/v1/executions/{done[0]['execution_id']}",
                            headers=tenant.headers())  # fmt: skip
    assert gone.status_code == 404
    assert gateway.ended_execution(keeper, forever["execution_id"])["response"]["content"] \
        == forever["response"]["content"]  # fmt: skip
    kinds = [e["kind"] for e in _trail(gateway, tenant, "retention.swept")]
    assert kinds.count("retention.swept") >= 3
    assert _trail(gateway, tenant, "retention.set")[0]["detail"]["retention"] == {
        "payload_days": 1, "metrics_days": 2,
    }  # fmt: skip
    cleared = gateway.http.delete("/api/v1/retention", headers=tenant.headers())
    assert cleared.status_code == 200 and cleared.json() == {"retention": None}


@SQLITE_ONLY
def test_the_python_sdk_names_lists_exports_and_erases_a_subject(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    subject, canary = "user/with spaces?", f"SDK-{uuid.uuid4().hex}"  # escaped in the path
    client = Client(base_url=gateway.cluster.url(gateway.backend), tenant_id=tenant.id,
                    api_key=tenant.api_key)  # fmt: skip
    with client:
        done = client.agents.execute(agent["id"], prompt=f"Say {canary}", subject=subject)
        listed = client.subjects.list(subject)
        assert [e["execution_id"] for e in listed["executions"]] == [done.execution_id]
        assert any(canary in json.dumps(line) for line in client.subjects.export(subject))
        erased = client.subjects.erase(subject)
        assert erased["executions"] == 1 and erased["keys_destroyed"] == 1
        assert client.subjects.list(subject)["executions"][0]["payload"] == "erased"
        assert client.retention.set(30)["retention"] == {"payload_days": 30, "metrics_days": None}
        assert client.retention.get()["retention"]["payload_days"] == 30
        assert client.retention.clear() == {"retention": None}
