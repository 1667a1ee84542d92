"""Triggering state agent configurations: each enabled configuration of a state runs its
agent for a resource as a real execution, retried as its `retryConfig` says and repeated
as its `schedule` says. Runs inside the tenant actor; testable without Ray (the actor passes
in how one execution runs)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from domain.agent import Agent
from domain.errors import CBError
from domain.prompting import build_messages
from domain.run_plan import RunPlan, agent_plan
from domain.state_agents import (
    MAX_SCHEDULED_RUNS,
    backoff_s,
    input_variables,
    parameters_of,
    retries_on,
    user_turn,
)

log = logging.getLogger(__name__)

RunOne = Callable[[RunPlan, str], Awaitable[Any]]  # runs one execution to its end, or raises
AgentOf = Callable[[str], Agent]  # the tenant's agent by id (NotFound once deleted)


@dataclass(frozen=True)
class Job:
    """One configuration to run for one resource: what every attempt of it sends."""

    config: dict[str, Any]
    resource_id: str
    variables: dict[str, Any]

    def plan(self, agent: Agent, retry_count: int, retry_of: str | None) -> RunPlan:
        """The execution of one attempt: the user turn from the variables (the agent's
        template already applied), the configuration's LLM overrides, the resource tags."""
        config = self.config
        text = user_turn(agent.definition.get("user_template") or "", self.variables)
        metadata: dict[str, Any] = {
            "resource_id": self.resource_id,
            "state_id": config["state_id"],
            "state_agent_config_id": config["id"],
            "retry_count": retry_count,
        }
        if retry_of is not None:
            metadata["retry_of"] = retry_of
        body = {
            "prompt": text,
            "input": self.variables,
            "parameters": parameters_of(config.get("llm_config")),
            "output_mapping": config["output_mapping"],
            "metadata": metadata,
        }
        plan = agent_plan(agent, body)
        as_sent = {**agent.definition, "user_template": "{prompt}"}
        return replace(plan, messages=build_messages(as_sent, text, None))


@dataclass(frozen=True)
class Started:
    """What a trigger answers per configuration: an execution that ran (`ran`), or the id
    its first scheduled run will have (`pending`, with when it is due)."""

    execution_id: str
    config: dict[str, Any]
    ran: bool
    due_at: float | None = None

    def as_dict(self, job: Job) -> dict[str, Any]:
        return {
            "execution_id": self.execution_id,
            "ran": self.ran,
            "due_at": self.due_at,
            "agent_id": self.config["agent_id"],
            "resource_id": job.resource_id,
            "state_id": self.config["state_id"],
            "input": job.variables,
        }


class StateAgentRunner:
    """Runs a tenant's state agent configurations; holds their scheduled runs."""

    def __init__(self, run_one: RunOne, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.run_one = run_one
        self.sleep = sleep
        self.scheduled: set[asyncio.Task[None]] = set()

    async def trigger(
        self,
        configs: list[dict[str, Any]],
        agent_of: AgentOf,
        resource_id: str,
        data: Any,
    ) -> list[dict[str, Any]]:
        """Run the enabled `configs` for the resource; every configuration is checked (its
        agent exists, its mapping finds its paths in `data`) before any runs. One per
        configuration: the last attempt's execution, or the pending first scheduled run."""
        jobs = []
        for config in (c for c in configs if c["enabled"]):
            job = Job(config, resource_id, input_variables(config["input_mapping"], data))
            job.plan(agent_of(config["agent_id"]), 0, None)  # an empty user turn raises here
            jobs.append(job)
        answers = await asyncio.gather(
            *(self._start(job, agent_of) for job in jobs), return_exceptions=True
        )
        refused = next((a for a in answers if isinstance(a, BaseException)), None)
        if refused is not None:  # nothing recorded for it (admission, budget): say so
            raise refused
        return [a.as_dict(job) for a, job in zip(answers, jobs, strict=True)]  # type: ignore[union-attr]

    async def _start(self, job: Job, agent_of: AgentOf) -> Started:
        """The first run now (then the rest of the schedule in the background), or all of
        the schedule in the background when it begins with a delay."""
        schedule = job.config.get("schedule") or {}
        delay = schedule.get("initial_delay_seconds") or 0
        interval = schedule.get("interval_seconds")
        runs = schedule.get("max_executions")
        if runs is None:
            runs = MAX_SCHEDULED_RUNS if interval else 1
        if delay > 0:
            first = str(uuid.uuid4())
            self._schedule(job, agent_of, first, delay, interval or 0, runs)
            return Started(first, job.config, ran=False, due_at=time.time() + delay)
        ran = await self.attempts(job, agent_of, str(uuid.uuid4()))
        if runs > 1 and interval:
            self._schedule(job, agent_of, None, interval, interval, runs - 1)
        return Started(ran, job.config, ran=True)

    async def attempts(self, job: Job, agent_of: AgentOf, execution_id: str) -> str:
        """Run the job, retrying the failures its retry configuration lists after its
        backoff; the id of the last execution. A refusal that recorded no execution (the
        tenant's limits, a hard budget) raises when it is not retried."""
        retry = job.config.get("retry_config") or {}
        attempts = retry.get("max_attempts") or 1
        previous: str | None = None
        for attempt in range(attempts):
            try:
                await self.run_one(job.plan(agent_of(job.config["agent_id"]), attempt, previous),
                                   execution_id)  # fmt: skip
                return execution_id
            except CBError as err:
                recorded = err.execution_id == execution_id
                again = attempt + 1 < attempts and retries_on(
                    err.type, retry.get("retry_on_errors") or []
                )
                if not again:
                    if recorded:
                        return execution_id
                    raise
                previous = execution_id if recorded else previous
                execution_id = str(uuid.uuid4())
                await self.sleep(backoff_s(retry.get("backoff_seconds") or 0, attempt + 1))
        raise AssertionError("unreachable")

    def _schedule(
        self,
        job: Job,
        agent_of: AgentOf,
        first_id: str | None,
        delay: float,
        interval: float,
        runs: int,
    ) -> None:
        task = asyncio.get_running_loop().create_task(
            self._repeat(job, agent_of, first_id, delay, interval, runs)
        )
        self.scheduled.add(task)
        task.add_done_callback(self.scheduled.discard)

    async def _repeat(
        self,
        job: Job,
        agent_of: AgentOf,
        first_id: str | None,
        delay: float,
        interval: float,
        runs: int,
    ) -> None:
        """`runs` runs, the first after `delay`, then one every `interval`; ends early when
        the agent is gone."""
        await self.sleep(delay)
        for run in range(runs):
            if run:
                await self.sleep(interval)
            execution_id = first_id if run == 0 and first_id else str(uuid.uuid4())
            try:
                await self.attempts(job, agent_of, execution_id)
            except CBError as err:
                if err.type == "not_found":
                    return
                log.warning("a scheduled state agent run was refused: %s", err.type)
            except Exception:
                log.exception("a scheduled state agent run failed")

    def stop(self) -> None:
        """Cancel the scheduled runs (the actor is stopping)."""
        for task in list(self.scheduled):
            task.cancel()
