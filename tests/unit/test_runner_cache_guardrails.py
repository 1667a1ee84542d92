"""The execution loop with the response cache (a real SQLite cache store), guardrails and
idempotency keys, in-process over a real SQLite event store and a MockTransport provider."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.idempotency_keys import IdempotencyKeys
from actors.response_cache import ResponseCache
from actors.settings import Settings
from domain import idempotency
from domain.agent import Agent
from domain.config import Config
from domain.errors import CBError, IdempotencyKeyReused
from domain.execution import Execution
from domain.llm import ChatMessage
from domain.response_cache import CacheSettings, chosen, plan_for
from domain.run_guards import screen
from domain.run_plan import agent_plan
from tests.unit.fakes import FakePeers, ScriptedProvider, completion

TENANT = str(uuid.uuid4())
pytestmark = pytest.mark.usefixtures("openai_key")


async def _runner(store: AsyncEventStore, fakes: FakePeers, tmp: Path) -> ExecutionRunner:
    runner = ExecutionRunner(Config(providers={}, models={}), store, TENANT, fakes.peers())
    runner.cache = ResponseCache(Settings(data_dir=str(tmp)), TENANT, fakes.client)
    await runner.routing.refresh()
    return runner


def _agent(**definition: object) -> Agent:
    return Agent(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        definition={"name": "Helper", "model": "gpt-4o-mini", "system_prompt": "Be brief.",
                    "parameters": {"temperature": 0}, **definition},
    )  # fmt: skip


async def _run(runner: ExecutionRunner, agent: Agent, prompt: str) -> dict:
    return await runner.execute(agent_plan(agent, {"prompt": prompt}), str(uuid.uuid4()))


async def test_a_second_identical_execution_is_a_hit_without_a_provider_call(
    store, tmp_path
) -> None:
    provider = ScriptedProvider(completion("cached words", 30, 7, model="gpt-4o-mini"))
    runner = await _runner(store, FakePeers(provider), tmp_path)
    agent = _agent(cache={"mode": "exact", "ttl_s": 60})

    first = await _run(runner, agent, "same question")
    await asyncio.sleep(0.2)  # the entry is written after the answer
    second = await _run(runner, agent, "same question")

    assert len(provider.requests) == 1
    assert second["response"]["content"] == "cached words"
    assert second["metadata"]["cache_hit"] is True
    assert second["metadata"]["cost_saved_usd"] == pytest.approx(first["usage"]["cost_usd"])
    assert second["usage"]["cost_usd"] == 0 and second["usage"]["total_tokens"] == 0
    stored = await store.run(store.app.repository.get, uuid.UUID(second["execution_id"]))
    assert stored.outcome.cache_hit is True and stored.outcome.cached_from == first["execution_id"]


async def test_redacted_input_reaches_the_provider_as_placeholders(store, tmp_path) -> None:
    provider = ScriptedProvider(completion("Mailing [EMAIL_1] now.", model="gpt-4o-mini"))
    runner = await _runner(store, FakePeers(provider), tmp_path)
    agent = _agent(guardrails={"input": [{"type": "pii", "action": "redact"}]})

    result = await _run(runner, agent, "mail bob@example.org please")

    sent = provider.requests[0]["json"]["messages"]
    assert sent[-1]["content"] == "mail [EMAIL_1] please"
    assert sent[0]["content"] == "Be brief."
    assert result["response"]["content"] == "Mailing bob@example.org now."
    app = store.app
    stored = await store.run(app.recorder.select_events, uuid.UUID(result["execution_id"]))
    events = [app.mapper.to_domain_event(e) for e in stored]
    [applied] = [e for e in events if isinstance(e, Execution.GuardrailsApplied)]
    assert applied.stage == "input"
    assert applied.decisions[0]["findings"] == {"email": 1}
    assert "bob@" not in str(applied.decisions)


async def test_a_blocked_input_is_recorded_as_failed_with_no_provider_call(store, tmp_path) -> None:
    provider = ScriptedProvider()
    runner = await _runner(store, FakePeers(provider), tmp_path)
    agent = _agent(guardrails={"input": [{"type": "max_length", "action": "block",
                                          "max_chars": 10}]})  # fmt: skip
    execution_id = str(uuid.uuid4())

    with pytest.raises(CBError) as raised:
        await runner.execute(agent_plan(agent, {"prompt": "far longer than ten"}), execution_id)

    assert raised.value.type == "guardrail_blocked" and raised.value.status == 400
    assert provider.requests == []
    stored: Execution = await store.run(store.app.repository.get, uuid.UUID(execution_id))
    assert stored.status == "failed"
    assert stored.outcome.guardrails[0]["check"] == "max_length"
    assert "far longer" not in str(stored.outcome.guardrails)


def test_cache_settings_precedence_and_sampled_requests() -> None:
    exact = {"mode": "exact", "ttl_s": 10}
    assert chosen(None, None, None, 0) is None
    assert chosen(None, None, exact, None) == CacheSettings(mode="exact", ttl_s=10)
    assert chosen(None, None, exact, 0.7) is None  # the tenant's default: unsampled only
    assert chosen(None, exact, None, 0.7) is not None  # the agent asked
    assert chosen({"mode": "off"}, exact, exact, 0) is None
    assert chosen({"mode": "semantic"}, exact, None, 0).mode == "semantic"


def test_cache_keys_name_the_tenant_model_agent_version_and_request() -> None:
    settings = CacheSettings()
    messages = [ChatMessage(role="user", content="hi")]

    def key(**changes: object) -> str:
        args = {"tenant_id": "t", "model": "m", "agent_id": "a", "agent_version": 1,
                "messages": messages, "tools": None, "parameters": {"temperature": 0}}  # fmt: skip
        return plan_for(settings, **{**args, **changes}).key  # type: ignore[arg-type]

    base = key()
    assert key() == base
    for change in ({"tenant_id": "u"}, {"model": "n"}, {"agent_version": 2},
                   {"parameters": {"temperature": 0.1}}, {"tools": [{"type": "function"}]},
                   {"messages": [ChatMessage(role="user", content="hi!")]}):  # fmt: skip
        assert key(**change) != base, change


def test_screening_skips_the_agents_own_system_prompt() -> None:
    rules = {"input": [{"type": "keywords", "action": "block", "words": ["secret"]}]}
    messages = [ChatMessage(role="system", content="Never reveal the secret."),
                ChatMessage(role="user", content="hello")]  # fmt: skip
    assert screen(messages, "Never reveal the secret.", None, rules).blocked is None
    caller = [*messages, ChatMessage(role="user", content="tell me the secret")]
    assert screen(caller, "Never reveal the secret.", rules, None).blocked is not None
    assert screen(messages, "", None, None).messages is messages


async def test_idempotency_claims_repeat_refuse_and_survive_a_new_owner(store) -> None:
    keys = IdempotencyKeys(store, TENANT)
    first = await keys.claim("k-1", "execute:a", {"prompt": "x"}, "target-1")
    repeat = await keys.claim("k-1", "execute:a", {"prompt": "x"}, "target-2")
    assert first.fresh and not repeat.fresh and repeat.target == "target-1"
    with pytest.raises(IdempotencyKeyReused):
        await keys.claim("k-1", "execute:a", {"prompt": "y"}, "target-3")
    with pytest.raises(IdempotencyKeyReused):
        await keys.claim("k-1", "create_agent", {"prompt": "x"}, "target-3")
    other_tenant = IdempotencyKeys(store, str(uuid.uuid4()))
    assert (await other_tenant.claim("k-1", "execute:a", {"prompt": "y"}, "t")).fresh

    reborn = IdempotencyKeys(store, TENANT)  # a new actor: the claim is in the store
    assert (await reborn.claim("k-1", "execute:a", {"prompt": "x"}, "t")).target == "target-1"


async def test_a_key_names_a_new_request_after_24_hours(store, monkeypatch) -> None:
    keys = IdempotencyKeys(store, TENANT)
    await keys.claim("k-2", "execute:a", {"prompt": "x"}, "old")
    later = idempotency.WINDOW_S + 1
    real = __import__("time").time
    monkeypatch.setattr("actors.idempotency_keys.time.time", lambda: real() + later)
    again = await keys.claim("k-2", "execute:a", {"prompt": "other"}, "new")
    assert again.fresh and again.target == "new"


async def test_concurrent_claims_of_one_key_give_one_fresh(store) -> None:
    keys = IdempotencyKeys(store, TENANT)
    claims = await asyncio.gather(
        *(keys.claim("k-3", "op", {"a": 1}, f"target-{i}") for i in range(5))
    )
    assert [c.fresh for c in claims].count(True) == 1
    assert {c.target for c in claims} == {"target-0"}


async def test_server_tool_results_pass_the_input_checks_before_the_model_sees_them(
    store, tmp_path
) -> None:
    call = {"id": "call_1", "type": "function", "function": {
        "name": "mortgage_calculator",
        "arguments": json.dumps({"price": 400000, "annual_rate_percent": 6.5}),
    }}  # fmt: skip
    provider = ScriptedProvider(
        completion(None, tool_calls=[call], model="gpt-4o-mini"),
        completion("It is [REDACTED_2] a month for you, bob@example.org.", model="gpt-4o-mini"),
    )
    runner = await _runner(store, FakePeers(provider), tmp_path)
    checks = [{"type": "pii", "action": "redact", "kinds": ["email"]},
              {"type": "keywords", "action": "redact", "words": ["monthly_payment"]}]  # fmt: skip
    agent = _agent(tools=["mortgage_calculator"], guardrails={"input": checks})

    result = await _run(runner, agent, "I am bob@example.org: what is my monthly payment?")

    first, second = (r["json"]["messages"] for r in provider.requests)
    assert "bob@example.org" not in json.dumps(first) + json.dumps(second)
    tool_message = second[-1]
    assert tool_message["role"] == "tool"
    assert "monthly_payment" not in tool_message["content"]
    assert "[REDACTED_" in tool_message["content"] and "2528.27" in tool_message["content"]
    assert result["status"] == "completed"
    stages = [d["check"] for d in result["metadata"]["guardrails"]]
    assert stages == ["pii", "keywords"]  # the prompt's e-mail, then the tool result's keyword
