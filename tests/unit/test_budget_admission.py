"""Budgets in the execution loop, in-process: what an execution holds, that a refusal
records nothing, and what it is charged when it ends."""

from __future__ import annotations

import time
import uuid

import pytest
from eventsourcing.application import AggregateNotFoundError

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from domain.agent import Agent
from domain.budgets import Budget, worst_cost
from domain.config import Config
from domain.errors import BudgetExceeded, CBError
from domain.llm import estimate_prompt_tokens
from domain.run_plan import agent_plan
from tests.unit.fakes import FakePeers, ScriptedProvider, completion, error

TENANT = str(uuid.uuid4())
pytestmark = pytest.mark.usefixtures("openai_key")


async def _runner(store: AsyncEventStore, fakes: FakePeers) -> ExecutionRunner:
    runner = ExecutionRunner(Config(providers={}, models={}), store, TENANT, fakes.peers())
    await runner.routing.refresh()
    return runner


def _agent(**parameters: object) -> Agent:
    definition = {"name": "Spender", "model": "gpt-4o-mini", "system_prompt": "Be brief.",
                  "parameters": parameters}  # fmt: skip
    return Agent(id=uuid.uuid4(), tenant_id=TENANT, definition=definition)


def _budget(runner: ExecutionRunner, scope: str, limit: float, enforcement: str = "hard") -> None:
    body = {"limit_usd": limit, "period": "day", "enforcement": enforcement}
    runner.budgets.set(scope, Budget.model_validate(body), time.time())


async def test_an_execution_holds_its_worst_cost_and_is_charged_its_real_one(store) -> None:
    runner = await _runner(store, FakePeers(ScriptedProvider(completion("ok", 20, 6))))
    agent = _agent(max_tokens=200)
    plan = agent_plan(agent, {"prompt": "What is Ray Serve?"})
    model = runner.config.models["gpt-4o-mini"]
    worst = worst_cost(model, estimate_prompt_tokens(plan.messages), 200)
    _budget(runner, "tenant", 1.0)
    execution_id = str(uuid.uuid4())

    run = await runner.begin(plan, execution_id, stream=False)
    assert runner.budgets.status("tenant", time.time())["reserved_usd"] == worst
    # without max_tokens, the model's own ceiling is held
    unbounded = agent_plan(_agent(), {"prompt": "What is Ray Serve?"})
    await runner.begin(unbounded, str(uuid.uuid4()), stream=False)
    ceiling = worst_cost(model, estimate_prompt_tokens(unbounded.messages), None)
    held = runner.budgets.status("tenant", time.time())["reserved_usd"]
    assert held == pytest.approx(worst + ceiling) and ceiling > worst

    run.outcome.cost_usd = 0.000123  # what the execution recorded when it ended
    assert runner.settle_budget(execution_id) == []
    assert runner.settle_budget(execution_id) == []  # once
    status = runner.budgets.status("tenant", time.time())
    assert status["spent_usd"] == 0.000123 and status["reserved_usd"] == pytest.approx(ceiling)


async def test_a_hard_budget_refusal_records_nothing(store) -> None:
    runner = await _runner(store, FakePeers(ScriptedProvider(completion("ok"))))
    agent = _agent(max_tokens=200)
    _budget(runner, f"agent:{agent.id}", 0.000001)
    execution_id = str(uuid.uuid4())
    with pytest.raises(BudgetExceeded) as raised:
        await runner.execute(agent_plan(agent, {"prompt": "hi"}), execution_id)
    assert raised.value.details["scope"] == f"agent:{agent.id}"
    with pytest.raises(AggregateNotFoundError):
        await store.run(store.app.repository.get, uuid.UUID(execution_id))
    assert runner.settle_budget(execution_id) == []
    assert runner.budget_refuses(agent_plan(agent, {"prompt": "hi"}))
    other = _agent()  # another agent: its executions have no budget to refuse them
    assert not runner.budget_refuses(agent_plan(other, {"prompt": "hi"}))


async def test_a_failed_execution_is_charged_what_it_recorded(store) -> None:
    runner = await _runner(store, FakePeers(ScriptedProvider(error(400))))
    _budget(runner, "tenant", 1.0, enforcement="soft")
    execution_id = str(uuid.uuid4())
    with pytest.raises(CBError):
        await runner.execute(agent_plan(_agent(), {"prompt": "hi"}), execution_id)
    assert runner.budgets.status("tenant", time.time())["reserved_usd"] > 0
    runner.settle_budget(execution_id)
    status = runner.budgets.status("tenant", time.time())
    assert (status["spent_usd"], status["reserved_usd"]) == (0, 0)
