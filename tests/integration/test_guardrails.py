"""Guardrails: personal data kept away from the provider, blocks as typed errors, flags
counted, output checks (redaction in streams, JSON-schema repair), every decision recorded
without the data it matched."""

from __future__ import annotations

import time
import uuid
from typing import Any

import openai

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.sse import read_events, stream

EMAIL, CARD = "jane.doe@example.com", "4111 1111 1111 1111"
PII_REDACT = {"input": [{"type": "pii", "action": "redact", "kinds": ["email", "card"]}]}


def tag() -> str:
    return f"guard-{uuid.uuid4().hex[:10]}"


def guarded_agent(gateway: ApiClient, tenant: Tenant, guardrails: dict[str, Any]) -> Any:
    return gateway.new_agent(tenant, system_prompt="Be brief.", guardrails=guardrails)


def test_personal_data_never_reaches_the_provider_and_comes_back_restored(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = guarded_agent(gateway, tenant, PII_REDACT)
    marker = tag()
    emu.script(marker, content="I will write to [EMAIL_1] about the card [CARD_1].")

    reply = gateway.execute(
        tenant, agent["id"], f"Mail {EMAIL} about card {CARD}, also {EMAIL}. {marker}"
    )

    assert reply.status_code == 200, reply.text
    [sent] = emu.requests_matching(marker)
    text = str(sent.body)
    assert EMAIL not in text and "4111" not in text
    user = sent.body["messages"][-1]["content"]
    assert user == f"Mail [EMAIL_1] about card [CARD_1], also [EMAIL_1]. {marker}"
    assert reply.json()["response"]["content"] == f"I will write to {EMAIL} about the card {CARD}."
    [decision] = reply.json()["metadata"]["guardrails"]
    assert decision == {"stage": "input", "index": 0, "check": "pii", "action": "redact",
                        "findings": {"email": 2, "card": 1}, "detail": None}  # fmt: skip


def test_a_blocked_request_is_a_typed_error_recorded_without_a_provider_call(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = guarded_agent(gateway, tenant, {"input": [
        {"type": "keywords", "action": "block", "words": ["wire transfer"]}]})  # fmt: skip
    marker = tag()

    reply = gateway.execute(tenant, agent["id"], f"Please do a Wire Transfer now {marker}")

    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "guardrail_blocked"
    assert error["details"] == {"stage": "input", "check": "keywords", "index": 0,
                                "findings": {"keyword": 1}}  # fmt: skip
    assert "Wire Transfer" not in reply.text
    assert emu.requests_matching(marker) == []
    recorded = gateway.ended_execution(tenant, error["execution_id"])
    assert recorded["status"] == "failed"
    assert recorded["error"]["type"] == "guardrail_blocked"


def test_flags_are_recorded_counted_and_audited_without_the_data(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    policy = {"guardrails": {"input": [{"type": "pii", "action": "flag", "kinds": ["email"]}]}}
    put = gateway.http.put(
        f"/api/v1/tenants/{tenant.id}/model-policy", json=policy, headers=tenant.headers()
    )
    assert put.status_code == 200, put.text
    agent = gateway.new_agent(tenant)
    marker = tag()
    emu.script(marker, content="noted")

    flagged = gateway.execute(tenant, agent["id"], f"write to {EMAIL} {marker}")
    clean = gateway.execute(tenant, agent["id"], f"nothing personal {marker}")

    assert flagged.status_code == clean.status_code == 200
    assert EMAIL in str(emu.requests_matching(marker)[0].body)  # flag: the text goes as sent
    assert flagged.json()["metadata"]["guardrails"][0]["action"] == "flag"
    assert "guardrails" not in clean.json()["metadata"]
    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60), "group_by": "day"}
    entries: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while True:
        rows = gateway.http.get("/api/v1/analytics/usage", params=params,
                                headers=tenant.headers()).json()["rows"]  # fmt: skip
        audit = gateway.http.get("/api/v1/audit", headers=tenant.headers()).json()["entries"]
        entries = [e for e in audit if e["kind"] == "guardrail.fired"]
        if rows and rows[0]["executions"] == 2 and entries:
            break
        assert time.monotonic() < deadline, (rows, audit)
        time.sleep(0.2)
    assert rows[0]["guardrails"] == {"flags": 1, "redactions": 0, "blocks": 0}
    [entry] = entries
    assert entry["target"] == flagged.json()["execution_id"]
    assert entry["detail"]["stage"] == "input"
    assert EMAIL not in str(audit)


def test_output_checks_block_redact_and_repair_json(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    schema = {"type": "object", "required": ["answer"],
              "properties": {"answer": {"type": "integer"}}}  # fmt: skip
    agent = guarded_agent(gateway, tenant, {"output": [
        {"type": "regex", "action": "block", "patterns": [r"(?i)internal use only"]},
        {"type": "pii", "action": "redact", "kinds": ["email"]},
        {"type": "json_schema", "action": "block", "schema": schema, "repair": True},
    ]})  # fmt: skip
    fixed, broken = tag(), tag()
    emu.script(fixed, content='{"answer": 4}')
    emu.script(fixed, content="It is four.", times=1)  # the first answer is not JSON
    emu.script(broken, content="INTERNAL USE ONLY: 4")

    repaired = gateway.execute(tenant, agent["id"], f"2+2 as JSON {fixed}")
    blocked = gateway.execute(tenant, agent["id"], f"secret {broken}")

    assert repaired.status_code == 200, repaired.text
    assert repaired.json()["response"]["content"] == '{"answer": 4}'
    calls = emu.requests_matching(fixed)
    assert len(calls) == 2 and "JSON Schema" in calls[1].body["messages"][-1]["content"]
    assert repaired.json()["metadata"]["attempts"] == 2
    assert blocked.status_code == 422, blocked.text
    assert blocked.json()["error"]["type"] == "guardrail_output_blocked"
    assert "INTERNAL" not in blocked.text


def test_a_stream_is_redacted_a_sentence_at_a_time(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = guarded_agent(gateway, tenant, {"output": [
        {"type": "pii", "action": "redact", "kinds": ["email"]}]})  # fmt: skip
    marker = tag()
    chunks = ["First sentence. Write to jane.", "doe@exam", "ple.com today. ", "Bye ", "now."]
    emu.script(marker, chunks=chunks)

    with stream(gateway, tenant, agent["id"], f"go {marker}") as reply:
        events = read_events(reply)

    deltas = [e["data"]["delta"] for e in events if e["event"] == "content_chunk"]
    text = "".join(deltas)
    assert "jane" not in text and "example.com" not in text
    assert text == "First sentence. Write to [EMAIL_1] today. Bye now."
    assert deltas[0] == "First sentence. "  # released at the sentence's end, not held longer
    done = events[-1]
    assert done["event"] == "execution_complete"
    assert done["data"]["response"]["content"] == text
    assert done["data"]["metadata"]["guardrails"][0]["findings"] == {"email": 1}


@SQLITE_ONLY
def test_the_openai_door_redacts_and_bad_configs_are_a_clear_400(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = guarded_agent(gateway, tenant, PII_REDACT)
    client = openai.OpenAI(base_url=f"{gateway.cluster.url('sqlite')}/v1", api_key=tenant.api_key,
                           max_retries=0)  # fmt: skip
    marker = tag()
    emu.script(marker, content="ok")
    client.chat.completions.create(
        model=f"agent:{agent['id']}",
        messages=[{"role": "user", "content": f"my mail is {EMAIL} {marker}"}],
    )
    [sent] = emu.requests_matching(marker)
    assert EMAIL not in str(sent.body) and "[EMAIL_1]" in str(sent.body)
    client.close()

    bad = {
        "name": "Bad",
        "model": "cb:smart-chat",
        "guardrails": {"input": [{"type": "regex", "action": "block", "patterns": ["(oops"]}]},
    }
    reply = gateway.http.post("/api/v1/agents", json=bad, headers=tenant.headers())
    assert reply.status_code == 400, reply.text
    assert "guardrails.input" in reply.json()["error"]["message"]
    assert "regex" in reply.json()["error"]["message"]
    schema_in = {"input": [{"type": "json_schema", "action": "block", "schema": {}}]}
    patched = gateway.http.patch(f"/api/v1/agents/{agent['id']}", json={"guardrails": schema_in},
                                 headers=tenant.headers())  # fmt: skip
    assert patched.status_code == 400, patched.text
