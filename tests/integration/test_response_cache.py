"""The response cache: a repeated request is answered without the provider, at no cost, and
recorded as an execution that says so; tenants never share entries; streams, the OpenAI door,
semantic hits, invalidation and a restart of the tenant's actor.

The SQLite app keeps the cache in its data directory, the PostgreSQL app in Redis.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import openai
import pytest
import ray

from actors import names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import read_events, stream

EXACT = {"mode": "exact", "ttl_s": 600}


def tag() -> str:
    return f"cache-{uuid.uuid4().hex[:10]}"


def cached_agent(gateway: ApiClient, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    return gateway.new_agent(tenant, cache=EXACT, **overrides)


def ok(reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_a_repeated_request_is_a_hit_with_no_provider_call_and_the_cost_saved(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    assert agent["cache"] == {"mode": "exact", "ttl_s": 600.0}
    marker = tag()
    emu.script(marker, content=f"Paris ({marker})", prompt_tokens=40, completion_tokens=10)

    first = ok(gateway.execute(tenant, agent["id"], f"capital of France? {marker}"))
    second = ok(gateway.execute(tenant, agent["id"], f"capital of France? {marker}"))

    assert len(emu.requests_matching(marker)) == 1
    assert first["metadata"]["cache_hit"] is False
    assert first["usage"]["cost_usd"] > 0
    assert second["response"]["content"] == first["response"]["content"] == f"Paris ({marker})"
    meta = second["metadata"]
    assert meta["cache_hit"] is True
    assert meta["cost_saved_usd"] == pytest.approx(first["usage"]["cost_usd"])
    assert meta["cached_from"] == first["execution_id"]
    assert meta["cache_similarity"] == 1.0
    assert meta["attempts"] == 0
    assert second["usage"]["cost_usd"] == 0 and second["usage"]["total_tokens"] == 0
    assert second["execution_id"] != first["execution_id"]
    recorded = gateway.ended_execution(tenant, second["execution_id"])
    assert recorded["status"] == "completed"
    assert recorded["metadata"]["cache_hit"] is True

    other = ok(gateway.execute(tenant, agent["id"], f"capital of Spain? {marker}"))
    assert other["metadata"]["cache_hit"] is False
    assert len(emu.requests_matching(marker)) == 2


def test_tenants_never_share_entries(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent_a, agent_b = cached_agent(gateway, a), cached_agent(gateway, b)
    marker = tag()
    emu.script(marker, content=f"answer {marker}")

    ok(gateway.execute(a, agent_a["id"], f"same words {marker}"))
    from_b = ok(gateway.execute(b, agent_b["id"], f"same words {marker}"))

    assert from_b["metadata"]["cache_hit"] is False
    assert len(emu.requests_matching(marker)) == 2


@SQLITE_ONLY
def test_which_settings_win_and_sampled_requests(gateway: ApiClient) -> None:
    """The request's cache over the agent's over the tenant's; the tenant's default caches
    only unsampled requests, an explicit request caches a sampled one."""
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    policy = {"cache": {"mode": "exact", "ttl_s": 300}}
    put = gateway.http.put(
        f"/api/v1/tenants/{tenant.id}/model-policy", json=policy, headers=tenant.headers()
    )
    assert put.status_code == 200, put.text
    plain = gateway.new_agent(tenant, parameters={"temperature": 0})
    sampled = gateway.new_agent(tenant, parameters={"temperature": 0.7})
    marker = tag()
    emu.script(marker, content=f"ok {marker}")

    def run(agent: dict[str, Any], **body: Any) -> dict[str, Any]:
        return ok(gateway.execute(tenant, agent["id"], f"question {marker}", **body))["metadata"]

    assert run(plain)["cache_hit"] is False
    assert run(plain)["cache_hit"] is True  # the tenant default, temperature 0
    assert "cache_hit" not in run(sampled)  # sampled: the tenant default does not apply
    assert "cache_hit" not in run(sampled)
    assert run(sampled, cache=EXACT)["cache_hit"] is False  # asked for: cached
    assert run(sampled, cache=EXACT)["cache_hit"] is True
    assert "cache_hit" not in run(plain, cache={"mode": "off"})
    assert len(emu.requests_matching(marker)) == 5


def test_a_stream_is_served_from_the_cache_as_a_stream(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    marker = tag()
    text = f"One sentence here. Another one follows, a little longer ({marker})."
    emu.script(marker, content=text, prompt_tokens=12, completion_tokens=20)

    with stream(gateway, tenant, agent["id"], f"tell me {marker}") as first:
        fresh = read_events(first)
    with stream(gateway, tenant, agent["id"], f"tell me {marker}") as second:
        cached = read_events(second)

    assert len(emu.requests_matching(marker)) == 1
    kinds = [e["event"] for e in cached]
    assert kinds[0] == "execution_start" and kinds[-1] == "execution_complete"
    assert set(kinds) == {"execution_start", "content_chunk", "usage_update",
                          "execution_complete"}  # fmt: skip
    assert kinds.count("content_chunk") >= 2
    assert "".join(e["data"]["delta"] for e in cached if e["event"] == "content_chunk") == text
    done = cached[-1]["data"]
    assert done["metadata"]["cache_hit"] is True
    assert done["metadata"]["cached_from"] == fresh[-1]["data"]["execution_id"]
    assert done["metadata"]["cost_saved_usd"] == pytest.approx(
        fresh[-1]["data"]["usage"]["cost_usd"]
    )
    assert [e["id"] for e in cached] == list(range(1, len(cached) + 1))


@SQLITE_ONLY
def test_the_openai_door_and_a_cached_answer_across_whole_and_stream(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    client = openai.OpenAI(base_url=f"{gateway.cluster.url('sqlite')}/v1", api_key=tenant.api_key,
                           max_retries=0)  # fmt: skip
    marker = tag()
    emu.script(marker, content=f"door {marker}", prompt_tokens=7, completion_tokens=3)
    messages: list[Any] = [{"role": "user", "content": f"hello {marker}"}]
    extra = {"cache": EXACT}

    first = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_body=extra
    )
    again = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_body=extra
    )
    chunks = list(client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, extra_body=extra, stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip

    assert len(emu.requests_matching(marker)) == 1
    assert again.parse().choices[0].message.content == f"door {marker}"
    assert again.parse().usage.total_tokens == 0
    hit_id = again.headers["x-cb-execution-id"]
    assert hit_id != first.headers["x-cb-execution-id"]
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == f"door {marker}"
    )
    record = gateway.ended_execution(tenant, hit_id)
    assert record["metadata"]["cache_hit"] is True
    client.close()


def test_semantic_hits_only_above_the_threshold(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(
        tenant, system_prompt="", cache={"mode": "semantic", "ttl_s": 600, "threshold": 0.8}
    )
    marker = tag()
    emu.script(marker, content=f"Paris, of course ({marker})")
    emu.script("weather", content="Sunny.")

    first = ok(gateway.execute(tenant, agent["id"], f"What is the capital of France? {marker}"))
    near = ok(gateway.execute(tenant, agent["id"], f"So what is the capital of France? {marker}"))
    far = ok(gateway.execute(tenant, agent["id"], "How is the weather in Oslo tomorrow morning?"))

    assert first["metadata"]["cache_hit"] is False
    assert near["metadata"]["cache_hit"] is True
    assert 0.8 <= near["metadata"]["cache_similarity"] < 1.0
    assert near["response"]["content"] == f"Paris, of course ({marker})"
    assert far["metadata"]["cache_hit"] is False
    assert far["response"]["content"] == "Sunny."
    embeddings = [r for r in emu.requests if r.path == "/v1/embeddings"]
    assert any(marker in str(r.body) for r in embeddings)


def test_invalidation_by_agent_version_and_by_delete(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    marker = tag()
    emu.script(marker, content=f"v {marker}")
    prompt = f"version me {marker}"

    ok(gateway.execute(tenant, agent["id"], prompt))
    assert ok(gateway.execute(tenant, agent["id"], prompt))["metadata"]["cache_hit"] is True
    patched = gateway.http.patch(f"/api/v1/agents/{agent['id']}", json={"description": "v2"},
                                 headers=tenant.headers())  # fmt: skip
    assert patched.status_code == 200, patched.text
    assert ok(gateway.execute(tenant, agent["id"], prompt))["metadata"]["cache_hit"] is False
    assert ok(gateway.execute(tenant, agent["id"], prompt))["metadata"]["cache_hit"] is True

    cleared = gateway.http.delete("/api/v1/cache", headers=tenant.headers())
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["deleted"] >= 2
    assert ok(gateway.execute(tenant, agent["id"], prompt))["metadata"]["cache_hit"] is False
    assert len(emu.requests_matching(marker)) == 3
    deadline = time.monotonic() + 10
    while True:
        audit = gateway.http.get("/api/v1/audit", headers=tenant.headers())
        assert audit.status_code == 200, audit.text
        cleared_entries = [e for e in audit.json()["entries"] if e["kind"] == "cache.cleared"]
        if cleared_entries:
            break
        assert time.monotonic() < deadline, audit.text
        time.sleep(0.2)
    assert cleared_entries[0]["detail"] == {"entries": cleared.json()["deleted"]}


def test_hits_survive_a_restart_of_the_tenant_actor(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    marker = tag()
    emu.script(marker, content=f"kept {marker}")
    ok(gateway.execute(tenant, agent["id"], f"keep {marker}"))
    time.sleep(0.3)  # the entry is written after the answer, unawaited

    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    time.sleep(1.0)  # gone, not dying: a call it took as it died would be reported, not rerun
    again = ok(gateway.execute(tenant, agent["id"], f"keep {marker}"))

    assert again["metadata"]["cache_hit"] is True
    assert len(emu.requests_matching(marker)) == 1


def test_analytics_count_hits_and_the_money_saved(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    marker = tag()
    emu.script(marker, content=f"a {marker}", prompt_tokens=1000, completion_tokens=500)
    first = ok(gateway.execute(tenant, agent["id"], f"count {marker}"))
    for _ in range(3):
        ok(gateway.execute(tenant, agent["id"], f"count {marker}"))

    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60), "group_by": "day"}
    deadline = time.monotonic() + 10
    while True:
        reply = gateway.http.get("/api/v1/analytics/usage", params=params,
                                 headers=tenant.headers())  # fmt: skip
        assert reply.status_code == 200, reply.text
        rows = reply.json()["rows"]
        if rows and rows[0]["executions"] == 4:
            break
        assert time.monotonic() < deadline, rows
        time.sleep(0.2)
    cache = rows[0]["cache"]
    assert cache["hits"] == 3 and cache["hit_rate"] == 0.75
    assert cache["cost_saved_usd"] == pytest.approx(3 * first["usage"]["cost_usd"])
    assert rows[0]["cost_usd"] == pytest.approx(first["usage"]["cost_usd"])


def test_bad_cache_settings_are_a_clear_400(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    for bad in ({"mode": "fuzzy"}, {"ttl_s": -1}, {"mode": "semantic", "threshold": 0.1},
                {"mode": "exact", "extra": 1}):  # fmt: skip
        reply = gateway.execute(tenant, agent["id"], "hi", cache=bad)
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["type"] == "invalid_request", reply.text
        assert reply.json()["error"]["message"].startswith("body.cache"), reply.text


def test_erasing_a_tenant_erases_its_cached_answers(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = cached_agent(gateway, tenant)
    marker = tag()
    emu.script(marker, content=f"forget me {marker}")
    ok(gateway.execute(tenant, agent["id"], f"remember {marker}"))
    time.sleep(0.3)  # the entry is written after the answer, unawaited

    erased = gateway.http.delete(f"/api/v1/admin/tenants/{tenant.id}", headers=gateway.admin)

    assert erased.status_code == 200, erased.text
    assert erased.json()["cached_answers"] == 1
