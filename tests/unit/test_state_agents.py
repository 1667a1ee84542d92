"""State agent configurations without Ray: mappings, retries, the trigger's runs, the stored
configuration and its audit entry, and the history tags an execution carries."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import AsyncEventStore, EventStore
from actors.execution_runner import ExecutionRunner
from actors.secrets import SecretBox
from actors.settings import Settings, new_key
from actors.state_agents import StateAgentRunner
from actors.tenant_commands import TenantCommands
from domain.agent import Agent
from domain.audit import entry_of
from domain.config import Config
from domain.errors import InvalidRequest, NotFound, ProviderTimeout, RateLimited
from domain.execution import Execution
from domain.results import ErrorInfo, Outcome
from domain.run_plan import RunPlan
from domain.state_agents import (
    backoff_s,
    checked_config,
    input_variables,
    legacy_status,
    output_fields,
    parameters_of,
    parse_path,
    read_path,
    retries_on,
    user_turn,
)
from projections import history, runner
from projections.db import ReadModelDB
from tests.unit.fakes import FakePeers

DATA = {"customer": {"name": "Ada", "tier": "gold"}, "items": [{"sku": "A-1"}, {"sku": "B-2"}]}


def test_paths_read_names_and_indexes_with_or_without_the_dollar() -> None:
    assert parse_path("$.items[1].sku") == ["items", 1, "sku"]
    assert parse_path("customer.name") == ["customer", "name"]
    assert parse_path("$") == [] and read_path(DATA, "$") == DATA
    assert read_path(DATA, "$.items[1].sku") == "B-2"
    assert read_path(DATA, "items[0]") == {"sku": "A-1"}
    for bad in ("", "$..a", "$.a[x]", "$.a[", 3):
        with pytest.raises(InvalidRequest):
            parse_path(bad)  # type: ignore[arg-type]


def test_input_mapping_reads_variables_and_names_a_missing_path() -> None:
    mapping = {"name": "$.customer.name", "first": "$.items[0].sku"}
    assert input_variables(mapping, DATA) == {"name": "Ada", "first": "A-1"}
    assert input_variables({}, DATA) == {"data": DATA}  # no mapping: the whole data
    with pytest.raises(InvalidRequest, match=r"inputMapping.gone: .*\$\.customer\.email"):
        input_variables({"gone": "$.customer.email"}, DATA)
    with pytest.raises(InvalidRequest):
        input_variables({"past_end": "$.items[5]"}, DATA)


def test_the_user_turn_fills_the_template_and_places_the_rest_as_the_prompt() -> None:
    variables = {"name": "Ada", "tier": "gold"}
    assert user_turn("Greet {{name}}.", variables) == 'Greet Ada.\n\n{"tier": "gold"}'
    assert user_turn("Greet {name}: {prompt}", {"name": "Ada", "prompt": "hi"}) == "Greet Ada: hi"
    assert user_turn("{prompt}", {"n": 1}) == '{"n": 1}'
    assert user_turn("Hello {name} {unknown}", {"name": "Ada"}) == "Hello Ada {unknown}"
    with pytest.raises(InvalidRequest, match="empty"):
        user_turn("", {"prompt": ""})


def test_output_mapping_fills_nested_resource_fields_from_the_answer() -> None:
    mapping = {"review.sentiment": "$.json.sentiment", "review.text": "$.content", "x": "$.json.y"}
    answer = '{"sentiment": "positive"}'
    assert output_fields(mapping, answer) == {
        "review": {"sentiment": "positive", "text": answer}  # x: the answer has no y
    }
    assert output_fields({"summary": "content"}, "plain text") == {"summary": "plain text"}


def test_a_configuration_is_checked_before_it_is_stored() -> None:
    good = {
        "state_id": "review", "agent_id": "a", "input_mapping": {"n": "$.name"},
        "output_mapping": {"out": "$.content"}, "enabled": True,
        "llm_config": {"temperature": 0.2, "max_tokens": 50, "stop_sequences": []},
        "retry_config": {"max_attempts": 3, "backoff_seconds": 1, "retry_on_errors": ["*"]},
        "schedule": None,
    }  # fmt: skip
    assert checked_config(good)["input_mapping"] == {"n": "$.name"}
    assert parameters_of(good["llm_config"]) == {"temperature": 0.2, "max_tokens": 50}
    for change, message in (
        ({"input_mapping": {"n": "$.a[x]"}}, "malformed"),
        ({"input_mapping": ["$.a"]}, "JSON object"),
        ({"input_mapping": {"not a name": "$.a"}}, "template variable"),
        ({"output_mapping": {"a..b": "$.content"}}, "dotted"),
        ({"llm_config": {"temperature": 9, "stop_sequences": []}}, "llmConfig.temperature"),
        ({"retry_config": {"max_attempts": 0, "backoff_seconds": 1, "retry_on_errors": []}},
         "maxAttempts"),
        ({"schedule": {"interval_seconds": 0}}, "intervalSeconds"),
        ({"state_id": " "}, "stateId"),
    ):  # fmt: skip
        with pytest.raises(InvalidRequest, match=message):
            checked_config({**good, **change})


def test_retry_matching_backoff_and_legacy_status() -> None:
    assert retries_on("provider_timeout", ["provider_timeout"])
    assert retries_on("provider_timeout", ["ProviderError"])  # a refinement of it
    assert retries_on("provider_timeout", ["TimeoutError"])
    assert retries_on("provider_rate_limited", ["RateLimitError"])
    assert retries_on("invalid_request", ["*"])
    assert not retries_on("invalid_request", ["provider_error", "timeout"])
    assert not retries_on("provider_timeout", [])
    assert [backoff_s(2, n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert backoff_s(200, 3) == 300.0  # capped
    assert legacy_status("failed", "provider_timeout") == "TIMEOUT"
    assert legacy_status("failed", "provider_error") == "FAILED"
    assert legacy_status("completed", None) == "COMPLETED"
    assert legacy_status("cancelled", None) == "CANCELLED"


def _agent(template: str = "Review: {prompt}") -> Agent:
    definition = {"name": "Reviewer", "model": "cb:smart-chat", "system_prompt": "Be brief.",
                  "user_template": template, "parameters": {"temperature": 0.7}}  # fmt: skip
    return Agent(id=uuid.uuid4(), tenant_id="t", definition=definition, by=None)


def _config(agent: Agent, **changes: Any) -> dict[str, Any]:
    return {
        "id": uuid.uuid4().hex, "state_id": "review", "agent_id": str(agent.id),
        "input_mapping": {"name": "$.customer.name"}, "output_mapping": {},
        "llm_config": {"temperature": 0.1, "stop_sequences": ["END"]}, "enabled": True,
        "retry_config": None, "schedule": None, **changes,
    }  # fmt: skip


class Runs:
    """The tenant actor's part: runs an execution, failing as scripted (recorded or not)."""

    def __init__(self, *failures: Exception | None) -> None:
        self.failures = list(failures)
        self.plans: list[tuple[RunPlan, str]] = []

    async def __call__(self, plan: RunPlan, execution_id: str) -> None:
        self.plans.append((plan, execution_id))
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None:
            if isinstance(failure, ProviderTimeout):
                failure.execution_id = execution_id  # recorded as failed, as the runner does
            raise failure


async def test_a_trigger_runs_each_enabled_config_tagged_with_its_overrides() -> None:
    agent = _agent()
    runs, slept = Runs(), []
    trigger = StateAgentRunner(runs, sleep=lambda s: _record_sleep(slept, s))
    configs = [_config(agent), _config(agent, enabled=False)]
    answers = await trigger.trigger(configs, {str(agent.id): agent}.__getitem__, "res-1", DATA)
    assert len(answers) == 1 and answers[0]["ran"] and not slept
    plan, execution_id = runs.plans[0]
    assert answers[0]["execution_id"] == execution_id
    assert plan.messages[-1].content == 'Review: {"name": "Ada"}'  # the template applied once
    assert plan.messages[0].content == "Be brief."
    assert plan.parameters == {"temperature": 0.1, "stop": ["END"]}  # the config's override
    tags = {"resource_id": "res-1", "state_id": "review", "retry_count": 0}
    assert plan.metadata == {**tags, "state_agent_config_id": configs[0]["id"]}
    assert plan.request["input"] == {"name": "Ada"}


async def test_listed_failures_are_retried_with_backoff_and_counted() -> None:
    agent = _agent()
    retry = {"max_attempts": 3, "backoff_seconds": 1, "retry_on_errors": ["timeout"]}
    runs, slept = Runs(ProviderTimeout("slow"), ProviderTimeout("slow")), []
    trigger = StateAgentRunner(runs, sleep=lambda s: _record_sleep(slept, s))
    [answer] = await trigger.trigger(
        [_config(agent, retry_config=retry)], lambda _: agent, "res-1", DATA
    )
    ids = [eid for _, eid in runs.plans]
    assert len(set(ids)) == 3 and answer["execution_id"] == ids[-1]
    assert [p.metadata["retry_count"] for p, _ in runs.plans] == [0, 1, 2]
    assert [p.metadata.get("retry_of") for p, _ in runs.plans] == [None, ids[0], ids[1]]
    assert slept == [1.0, 2.0]

    # not listed: the failed execution is the answer, not retried
    runs = Runs(ProviderTimeout("slow"))
    retry = {"max_attempts": 3, "backoff_seconds": 0, "retry_on_errors": ["rate_limited"]}
    trigger = StateAgentRunner(runs, sleep=lambda s: _record_sleep([], s))
    [answer] = await trigger.trigger(
        [_config(agent, retry_config=retry)], lambda _: agent, "res-1", DATA
    )
    assert len(runs.plans) == 1 and answer["execution_id"] == runs.plans[0][1]

    # a refusal that recorded nothing is raised when it is not retried
    trigger = StateAgentRunner(Runs(RateLimited("slow down")), sleep=lambda s: _record_sleep([], s))
    with pytest.raises(RateLimited):
        await trigger.trigger([_config(agent)], lambda _: agent, "res-1", DATA)


async def test_nothing_runs_when_any_config_cannot() -> None:
    agent, runs = _agent(), Runs()
    trigger = StateAgentRunner(runs)
    good, missing_path = _config(agent), _config(agent, input_mapping={"x": "$.nope"})
    with pytest.raises(InvalidRequest, match="nope"):
        await trigger.trigger([good, missing_path], lambda _: agent, "r", DATA)

    def gone(agent_id: str) -> Agent:
        raise NotFound(f"agent {agent_id} not found")

    with pytest.raises(NotFound):
        await trigger.trigger([good], gone, "r", DATA)
    assert runs.plans == []


async def test_a_delayed_schedule_answers_pending_and_runs_later() -> None:
    agent, runs, slept, later = _agent(), Runs(), [], asyncio.Event()

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        await later.wait()

    trigger = StateAgentRunner(runs, sleep=sleep)
    schedule = {"initial_delay_seconds": 5, "interval_seconds": 60, "max_executions": 3}
    [answer] = await trigger.trigger(
        [_config(agent, schedule=schedule)], lambda _: agent, "r", DATA
    )
    assert not answer["ran"] and answer["due_at"] is not None and runs.plans == []
    assert trigger.scheduled  # held by the actor, which is not evicted meanwhile
    later.set()
    await _drain(trigger)
    assert runs.plans[0][1] == answer["execution_id"]
    assert len(runs.plans) == 3 and slept == [5, 60, 60]

    # without a delay the first run is the answer, the rest follow
    runs, slept, later = Runs(), [], asyncio.Event()
    trigger = StateAgentRunner(runs, sleep=sleep)
    schedule = {"interval_seconds": 10, "max_executions": 2}
    [answer] = await trigger.trigger(
        [_config(agent, schedule=schedule)], lambda _: agent, "r", DATA
    )
    assert answer["ran"] and len(runs.plans) == 1
    later.set()
    await _drain(trigger)
    assert len(runs.plans) == 2 and slept == [10]


async def _record_sleep(slept: list[float], seconds: float) -> None:
    slept.append(seconds)


async def _drain(trigger: StateAgentRunner) -> None:
    while trigger.scheduled:
        await asyncio.gather(*trigger.scheduled)


@pytest.mark.usefixtures("openai_key")
async def test_a_config_is_stored_as_a_tenant_event_audited_and_needs_its_agent(
    store: AsyncEventStore,
) -> None:
    box, tenant_id = SecretBox(key=new_key()), str(uuid.uuid4())
    runner_ = ExecutionRunner(Config(providers={}, models={}), store, tenant_id,
                              FakePeers().peers())  # fmt: skip
    commands = TenantCommands(tenant_id, store, box, runner_)
    await commands.load(runner_.routing.refresh())
    await commands.create_tenant("Acme", "admin")
    agent = await commands.create_agent({"name": "R", "model": "cb:smart-chat"}, None, "me")
    config = {"state_id": "review", "agent_id": agent["id"], "input_mapping": {},
              "output_mapping": {}, "enabled": True, "llm_config": None,
              "retry_config": None, "schedule": None, "auto_activity": "approve"}  # fmt: skip
    with pytest.raises(NotFound, match="agent"):
        await commands.create_state_agent_config({**config, "agent_id": "nope"}, "me")
    created = await commands.create_state_agent_config(config, "me from 10.0.0.1")
    assert created["id"] and created["created_at"].endswith("Z")

    again = TenantCommands(tenant_id, store, box, runner_)
    await again.load(runner_.routing.refresh())  # a new incarnation reads it back
    assert again.state_agent_configs("review") == [created]
    assert again.state_agent_configs("other") == []
    events = store.app.repository.get(uuid.UUID(tenant_id))
    assert events.state_agent_configs[created["id"]]["auto_activity"] == "approve"
    [stored] = [
        e
        for e in store.app.recorder.select_notifications(start=1, limit=100)
        if e.topic.endswith("StateAgentConfigured")
    ]
    entry = entry_of(store.app.mapper.to_domain_event(stored))
    assert entry is not None and entry["kind"] == "state_agent_config.created"
    assert entry["detail"]["agent_id"] == agent["id"] and entry["actor"] == "me"


@pytest.mark.parametrize("encrypted", [False, True])
def test_history_keeps_tags_retries_and_the_input_sealed(tmp_path: Path, encrypted: bool) -> None:
    settings = Settings(data_dir=str(tmp_path), encrypt_payloads=encrypted)
    app = EventStore(env=settings.store_env())
    tenant_id, canary = str(uuid.uuid4()), f"CANARY-{uuid.uuid4().hex}"
    tagged = Execution(
        id=uuid.uuid4(), tenant_id=tenant_id, agent_id="a", agent_version=1, stream=False,
        request={"prompt": canary, "metadata": {"resource_id": "res-9", "state_id": "s",
                                                "retry_count": 2}},
        model_requested="gpt-4o-mini",
    )  # fmt: skip
    tagged.fail(Outcome(error=ErrorInfo(type="provider_timeout", message="slow")))
    plain = Execution(
        id=uuid.uuid4(), tenant_id=tenant_id, agent_id="a", agent_version=1, stream=False,
        request={"prompt": "x", "metadata": {"resource_id": {"not": "a tag"}}},
        model_requested="gpt-4o-mini",
    )  # fmt: skip
    app.save(tagged, plain)
    db = ReadModelDB(settings.read_model_url())
    history.seal_results_with(SecretBox(settings) if encrypted else None)
    try:
        runner.create_tables(db)
        runner.create_tables(db)  # again: the columns and the index exist
        runner.catch_up(app, db)
        [view] = history.list_executions(db, tenant_id, resource_id="res-9", with_input=True)
        other = history.list_executions(db, str(uuid.uuid4()), resource_id="res-9")
        untagged = history.get_execution(db, tenant_id, str(plain.id))
    finally:
        history.seal_results_with(None)
        db.close()
        app.close()
    assert view["execution_id"] == str(tagged.id) and other == []
    assert (view["resource_id"], view["state_id"], view["retry_count"]) == ("res-9", "s", 2)
    assert view["input"] == {"prompt": canary}  # without its metadata
    assert untagged is not None and untagged["resource_id"] is None and "input" not in untagged
    files = b"".join(f.read_bytes() for f in tmp_path.glob("*.sqlite*"))
    assert (canary.encode() in files) is not encrypted
