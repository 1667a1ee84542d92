"""An execution really reaches the provider, is billed right, and is recorded."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.settings import DEFAULT_CONFIG, load_config
from tests.support.client import ApiClient

CATALOG = load_config(DEFAULT_CONFIG)


def marker() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def store_events(gateway: ApiClient, tenant_id: str, kind: str) -> list[Any]:
    """Events of one kind for one tenant, read straight from the event store."""
    app = EventStore(env=gateway.settings.store_env())
    try:
        topic = f"domain.execution:Execution.{kind}"
        notes = app.recorder.select_notifications(start=None, limit=100_000, topics=[topic])
        events = [app.mapper.to_domain_event(n) for n in notes]
        return [e for e in events if e.tenant_id == tenant_id]
    finally:
        app.close()


def test_execution_reaches_the_provider_once_with_the_resolved_model(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(
        tenant, system_prompt="You are exact.", parameters={"temperature": 0.3}
    )
    tag = marker()
    emu.script(tag, content=f"The answer is 4 ({tag})", prompt_tokens=123, completion_tokens=45)

    reply = gateway.execute(tenant, agent["id"], f"What is 2+2? {tag}")

    assert reply.status_code == 200, reply.text
    body = reply.json()
    seen = emu.requests_matching(tag)
    assert len(seen) == 1
    sent = seen[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.body["model"] == "gpt-4.1-mini"  # cb:smart-chat's first candidate
    assert sent.body["messages"] == [
        {"role": "system", "content": "You are exact."},
        {"role": "user", "content": f"What is 2+2? {tag}"},
    ]
    assert sent.body["temperature"] == 0.3
    assert sent.headers["authorization"] == "Bearer test-provider-key"

    assert body["status"] == "completed"
    assert body["response"]["content"] == f"The answer is 4 ({tag})"
    price = CATALOG.models["gpt-4.1-mini"]
    expected_cost = (123 * price.input_price_per_mtok + 45 * price.output_price_per_mtok) / 1e6
    assert body["usage"]["prompt_tokens"] == 123
    assert body["usage"]["completion_tokens"] == 45
    assert body["usage"]["total_tokens"] == 168
    assert body["usage"]["cost_usd"] == pytest.approx(expected_cost)
    assert body["usage"]["cost_usd"] > 0
    meta = body["metadata"]
    assert meta["model_requested"] == "cb:smart-chat"
    assert meta["model_resolved"] == "gpt-4.1-mini"
    assert meta["provider"] == "openai"
    assert meta["attempts"] == 1
    assert 0 < meta["duration_ms"] < 30_000
    assert meta["routing"]["strategy"] == "balanced"


def test_request_parameters_override_the_agent_and_unsupported_ones_are_dropped(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="o4-mini", parameters={"temperature": 0.9})
    tag = marker()
    reply = gateway.execute(tenant, agent["id"], tag, parameters={"max_tokens": 99})
    assert reply.status_code == 200, reply.text
    sent = emu.requests_matching(tag)[0].body
    assert sent["model"] == "o4-mini"
    assert sent["max_completion_tokens"] == 99
    assert "temperature" not in sent and "max_tokens" not in sent
    assert reply.json()["metadata"]["dropped_parameters"] == ["temperature"]


def test_started_is_durable_before_the_provider_is_called(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    tag = marker()
    emu.script(tag, content="slow answer", delay=2.0)
    reply = gateway.execute_held(tenant, agent["id"], tag)
    # the provider is holding the request: the start must already be in the store
    started = store_events(gateway, tenant.id, "Started")
    assert len(started) == 1 and started[0].agent_id == agent["id"]
    assert store_events(gateway, tenant.id, "Completed") == []
    execution_id = reply().json()["execution_id"]
    assert str(started[0].originator_id) == execution_id
    completed = store_events(gateway, tenant.id, "Completed")
    assert [str(e.originator_id) for e in completed] == [execution_id]
    assert completed[0].outcome["answer"]["content"] == "slow answer"  # facts, version 2


@pytest.mark.parametrize(
    ("status", "kind"), [(500, "provider_error"), (401, "provider_authentication_failed")]
)
def test_provider_errors_are_typed_failures_never_empty_successes(
    gateway: ApiClient, status: int, kind: str
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = marker()
    emu.script(tag, status=status)

    reply = gateway.execute(tenant, agent["id"], tag)

    assert reply.status_code >= 400
    assert "test-provider-key" not in reply.text
    error = reply.json()["error"]
    assert error["type"] == kind
    assert error["message"]
    execution_id = error["execution_id"]
    assert reply.json()["execution_id"] == execution_id
    expected_calls = 3 if status == 500 else 1  # 500 is retried twice; 401 is not retried
    assert len(emu.requests_matching(tag)) == expected_calls
    history = gateway.http.get(f"/api/v1/executions/{execution_id}", headers=tenant.headers())
    assert history.status_code == 200
    assert history.json()["status"] == "failed"
    assert history.json()["error"]["type"] == kind
    failed = store_events(gateway, tenant.id, "Failed")
    assert [str(e.originator_id) for e in failed] == [execution_id]


def test_history_lists_and_reads_executions(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    first = gateway.new_agent(tenant, name="first")
    second = gateway.new_agent(tenant, name="second")
    ids = [
        gateway.execute(tenant, first["id"], f"q{i} {marker()}").json()["execution_id"]
        for i in range(3)
    ]
    other = gateway.execute(tenant, second["id"], marker()).json()["execution_id"]

    listed = gateway.http.get(
        "/api/v1/executions", params={"agent_id": first["id"]}, headers=tenant.headers()
    ).json()["executions"]
    assert [e["execution_id"] for e in listed] == list(reversed(ids))
    assert all(e["status"] == "completed" and e["usage"]["cost_usd"] > 0 for e in listed)

    # `since` and `before` bound the start: the first agent's last two runs, then its first
    starts = [e["started_at"] for e in reversed(listed)]
    for params, expected in (
        ({"since": starts[1]}, list(reversed(ids[1:]))),
        ({"before": starts[1]}, ids[:1]),
        ({"since": starts[1], "before": starts[2]}, ids[1:2]),
    ):
        bounded = gateway.http.get(
            "/api/v1/executions", params={"agent_id": first["id"], **params},
            headers=tenant.headers(),
        ).json()["executions"]  # fmt: skip
        assert [e["execution_id"] for e in bounded] == expected, params

    one = gateway.http.get(f"/api/v1/executions/{other}", headers=tenant.headers()).json()
    assert one["agent_id"] == second["id"]
    assert one["model_resolved"] == "gpt-4.1-mini"
    assert one["response"]["content"].startswith("Echo: ")
    assert one["usage"]["total_tokens"] > 0 and one["duration_ms"] > 0


def test_metadata_shaped_like_a_stored_typed_value_is_kept_as_sent(gateway: ApiClient) -> None:
    # the event store marks its typed values {"_type_": …, "_data_": …}; a client's object of
    # that shape is data: it reads back as sent, and the read models fold past it
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    metadata = {
        "unknown": {"_type_": "no_such_type", "_data_": 1},
        "looks_like_a_uuid": {"_type_": "uuid_hex", "_data_": "0" * 32},
    }
    first = gateway.execute(tenant, agent["id"], marker(), metadata=metadata)
    assert first.status_code == 200, first.text
    assert first.json()["metadata"]["request_metadata"] == metadata
    after = gateway.execute(tenant, agent["id"], marker()).json()["execution_id"]

    read = gateway.http.get(
        f"/api/v1/executions/{first.json()['execution_id']}", headers=tenant.headers()
    ).json()
    assert read["status"] == "completed"
    assert read["metadata"]["request_metadata"] == metadata
    listed = gateway.http.get(
        "/api/v1/executions", params={"agent_id": agent["id"]}, headers=tenant.headers()
    ).json()["executions"]
    assert [e["execution_id"] for e in listed] == [after, first.json()["execution_id"]]
    [started] = [
        e for e in store_events(gateway, tenant.id, "Started")
        if str(e.originator_id) == first.json()["execution_id"]
    ]  # fmt: skip
    assert started.request["metadata"] == metadata
