"""`Idempotency-Key`: a POST sent again (while the first runs, after it ended, after the
client gave up, after the tenant's actor restarted) makes one provider call and one
execution; the same key with another body is a 422; keys are per tenant."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import openai
import ray

from actors import names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import read_events


def key() -> str:
    return f"idem-{uuid.uuid4().hex}"


def tag() -> str:
    return f"idem-{uuid.uuid4().hex[:10]}"


def execute(
    gateway: ApiClient, tenant: Tenant, agent_id: str, prompt: str, idem: str, **body: Any
) -> httpx.Response:
    return gateway.http.post(
        f"/api/v1/agents/{agent_id}/execute",
        json={"prompt": prompt, **body},
        headers={**tenant.headers(), "Idempotency-Key": idem},
    )


def executions_of(gateway: ApiClient, tenant: Tenant) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/executions", headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()["executions"]


def test_a_repeat_after_the_first_ended_is_its_answer(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    marker, idem = tag(), key()
    emu.script(marker, content=f"once {marker}")

    first = execute(gateway, tenant, agent["id"], f"pay me once {marker}", idem)
    again = execute(gateway, tenant, agent["id"], f"pay me once {marker}", idem)

    assert first.status_code == again.status_code == 200, (first.text, again.text)
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert again.json()["response"] == first.json()["response"]
    assert len(emu.requests_matching(marker)) == 1
    gateway.ended_execution(tenant, first.json()["execution_id"])
    assert [e["execution_id"] for e in executions_of(gateway, tenant)] == [
        first.json()["execution_id"]
    ]


def test_a_repeat_while_the_first_runs_waits_for_it(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    marker, idem = tag(), key()
    emu.script(marker, content=f"slow {marker}", delay=1.5)
    replies: dict[str, httpx.Response] = {}
    worker = threading.Thread(target=lambda: replies.update(
        first=execute(gateway, tenant, agent["id"], f"slow {marker}", idem)))  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 10
    while not emu.requests_matching(marker):
        assert time.monotonic() < deadline
        time.sleep(0.02)

    again = execute(gateway, tenant, agent["id"], f"slow {marker}", idem)
    worker.join(30)

    assert again.status_code == 200, again.text
    assert again.json()["execution_id"] == replies["first"].json()["execution_id"]
    assert again.json()["response"]["content"] == f"slow {marker}"
    assert len(emu.requests_matching(marker)) == 1


def test_a_client_that_gave_up_gets_the_answer_on_its_retry(gateway: ApiClient) -> None:
    """Under a key, the execution runs on when its caller times out; the retry gets it."""
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    marker, idem = tag(), key()
    emu.script(marker, content=f"patient {marker}", delay=1.0)
    impatient = httpx.Client(base_url=gateway.http.base_url, timeout=0.3)
    try:
        impatient.post(
            f"/api/v1/agents/{agent['id']}/execute",
            json={"prompt": f"wait {marker}"},
            headers={**tenant.headers(), "Idempotency-Key": idem},
        )
        raise AssertionError("the first call should have timed out")
    except httpx.ReadTimeout:
        pass
    finally:
        impatient.close()

    retry = execute(gateway, tenant, agent["id"], f"wait {marker}", idem)

    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "completed"
    assert retry.json()["response"]["content"] == f"patient {marker}"
    assert len(emu.requests_matching(marker)) == 1


def test_another_body_under_the_key_is_a_422_and_keys_are_per_tenant(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant, other = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent, other_agent = gateway.new_agent(tenant), gateway.new_agent(other)
    marker, idem = tag(), key()
    emu.script(marker, content=f"k {marker}")
    assert execute(gateway, tenant, agent["id"], f"first {marker}", idem).status_code == 200

    changed = execute(gateway, tenant, agent["id"], f"second {marker}", idem)
    assert changed.status_code == 422, changed.text
    assert changed.json()["error"]["type"] == "idempotency_key_reused"
    theirs = execute(gateway, other, other_agent["id"], f"first {marker}", idem)
    assert theirs.status_code == 200, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert len(emu.requests_matching(marker)) == 2

    bad = execute(gateway, tenant, agent["id"], "x", "k" * 300)
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request"


def test_a_claim_survives_a_restart_of_the_tenant_actor(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    marker, idem = tag(), key()
    emu.script(marker, content=f"durable {marker}")
    first = execute(gateway, tenant, agent["id"], f"keep {marker}", idem)
    assert first.status_code == 200, first.text

    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    time.sleep(1.0)  # gone, not dying: a call it took as it died would be reported, not rerun
    again = execute(gateway, tenant, agent["id"], f"keep {marker}", idem)

    assert again.status_code == 200, again.text
    assert again.json()["execution_id"] == first.json()["execution_id"]
    assert len(emu.requests_matching(marker)) == 1


def test_a_repeated_stream_joins_the_first(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    marker, idem = tag(), key()
    emu.script(marker, chunks=["one ", "two ", "three ", marker], chunk_delay=0.3)
    headers = {**tenant.headers(), "Idempotency-Key": idem}
    url = f"/api/v1/agents/{agent['id']}/execute/stream"
    body = {"prompt": f"count {marker}"}
    seen: dict[str, list[dict[str, Any]]] = {}

    def first() -> None:
        with gateway.http.stream("POST", url, json=body, headers=headers) as reply:
            seen["first"] = read_events(reply)

    worker = threading.Thread(target=first)
    worker.start()
    deadline = time.monotonic() + 10
    while not emu.requests_matching(marker):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    with gateway.http.stream("POST", url, json=body, headers=headers) as reply:
        assert reply.headers["idempotent-replayed"] == "true"
        live = read_events(reply)
    worker.join(30)
    with gateway.http.stream("POST", url, json=body, headers=headers) as reply:
        replayed = read_events(reply)

    assert len(emu.requests_matching(marker)) == 1
    for events in (live, replayed):
        assert [e["event"] for e in events] == [e["event"] for e in seen["first"]]
        assert events[-1]["data"]["execution_id"] == seen["first"][-1]["data"]["execution_id"]
        assert events[-1]["event"] == "execution_complete"


@SQLITE_ONLY
def test_chat_completions_and_agent_creation_under_a_key(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    client = openai.OpenAI(base_url=f"{gateway.cluster.url('sqlite')}/v1", api_key=tenant.api_key,
                           max_retries=0)  # fmt: skip
    marker, idem = tag(), key()
    emu.script(marker, content=f"door {marker}")
    messages: list[Any] = [{"role": "user", "content": f"hi {marker}"}]
    first = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_headers={"Idempotency-Key": idem}
    )
    again = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=messages, extra_headers={"Idempotency-Key": idem}
    )
    assert again.parse().id == first.parse().id
    assert again.headers["x-cb-execution-id"] == first.headers["x-cb-execution-id"]
    assert len(emu.requests_matching(marker)) == 1
    client.close()

    definition = {"name": "Once", "model": "cb:smart-chat"}
    agent_key = key()
    made = [
        gateway.http.post("/api/v1/agents", json=definition,
                          headers={**tenant.headers(), "Idempotency-Key": agent_key})
        for _ in range(2)
    ]  # fmt: skip
    assert [r.status_code for r in made] == [201, 201], [r.text for r in made]
    assert made[0].json()["id"] == made[1].json()["id"]
    assert made[1].headers["idempotent-replayed"] == "true"
    listed = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
    assert [a["name"] for a in listed].count("Once") == 1
