"""Replay experiments of one tenant, in its TenantActor.

Each run replays one recorded execution's exact input (its agent at the version it ran,
its prompt and context, or its chat messages; its parameters and tools) on one variant, as
a real execution of kind `experiment_run` under the tenant's limits and budgets: no cache,
no answer to any client, the tools' recorded results instead of new calls, its payload
sealed under the source's data subject. The `Experiment` aggregate records each run as it
ends, so an actor that comes back resumes the rest (a run that was in flight runs again).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from actors.execution_runner import ExecutionRunner
from actors.replies import WithHeaders
from domain.agent import Agent
from domain.errors import CBError, Conflict, InvalidRequest, NotFound, PayloadErased
from domain.execution import Execution
from domain.experiment import MAX_RUNS, Experiment, ExperimentRequest
from domain.run_plan import RunPlan, agent_plan, chat_plan
from domain.tenant import Tenant

log = logging.getLogger(__name__)

RunWhole = Callable[[RunPlan, str], Awaitable[WithHeaders]]
Judge = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
AgentNow = Callable[[str], Agent]  # the tenant's agent as it is (NotFound if none)
WAIT_S = 15.0  # a progress read waits this long for news


class Experiments:
    def __init__(
        self, runner: ExecutionRunner, run_whole: RunWhole, judge: Judge, agent_now: AgentNow
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.run_whole = run_whole
        self.judge = judge
        self.agent_now = agent_now
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.held: dict[str, Experiment] = {}  # the running ones
        self._news: dict[str, asyncio.Event] = {}
        self._cancelling: set[str] = set()
        self._writing = asyncio.Lock()

    # commands

    async def start(
        self, tenant: Tenant, body: dict[str, Any], sources: list[str], by: str
    ) -> Experiment:
        """Check the variants, record the start (the tenant notes it as running), run."""
        request = ExperimentRequest.model_validate(body)
        for variant in request.variants:
            if variant.model is not None:
                await self.runner.check_model(variant.model)
            else:
                self.agent_now(variant.agent_id or "")
        if request.judge is not None:
            await self.runner.check_model(request.judge.model)
        if not sources:
            raise InvalidRequest(
                "no recorded execution matches the source (ended, of this agent and status, "
                "in the range, with its input kept)", details={"param": "source"},
            )  # fmt: skip
        if len(sources) * len(request.variants) > MAX_RUNS:
            raise InvalidRequest(f"at most {MAX_RUNS} runs (sources × variants) per experiment")
        experiment = Experiment(
            id=uuid.uuid4(), tenant_id=self.runner.tenant_id,
            definition=request.model_dump(mode="json", by_alias=True), sources=sources, by=by,
        )  # fmt: skip
        tenant.open_experiment(str(experiment.id))
        await self.store.save(experiment, tenant)
        self._spawn(experiment, tenant)
        return experiment

    def resume(self, tenant: Tenant) -> None:
        """Go on with the experiments the tenant had running (after its actor came back)."""
        for experiment_id in list(getattr(tenant, "running_experiments", [])):
            if experiment_id not in self.tasks:
                task = asyncio.get_running_loop().create_task(self._resume(tenant, experiment_id))
                self._track(experiment_id, task)

    async def _resume(self, tenant: Tenant, experiment_id: str) -> None:
        experiment = await self._stored(experiment_id)
        if experiment is None:
            return
        self.held[experiment_id] = experiment
        await self._run(experiment, tenant)

    async def cancel(self, experiment_id: str) -> Experiment:
        """Stop starting runs and cancel the ones in flight (recorded `cancelled`)."""
        task = self.tasks.get(experiment_id)
        if task is None:
            experiment = await self.get(experiment_id)
            raise Conflict(
                f"experiment {experiment_id} is {experiment.status}: only a running one can be "
                "cancelled", details={"status": experiment.status},
            )  # fmt: skip
        self._cancelling.add(experiment_id)
        task.cancel()
        await asyncio.wait({task})
        return await self.get(experiment_id)

    def stop(self) -> None:
        """The actor stops: the runs stop where they are, to resume when it comes back."""
        for task in self.tasks.values():
            task.cancel()

    # reads

    async def get(self, experiment_id: str) -> Experiment:
        held = self.held.get(experiment_id)
        if held is not None:
            return held
        found = await self._stored(experiment_id)
        if found is None:
            raise NotFound(f"experiment {experiment_id} not found")
        return found

    async def _stored(self, experiment_id: str) -> Experiment | None:
        return await self.store.owned(experiment_id, Experiment, self.runner.tenant_id)

    async def progress(self, experiment_id: str, after: int) -> dict[str, Any]:
        """The runs recorded after the first `after` (waiting up to WAIT_S for one), and
        whether the experiment has ended."""
        experiment = await self.get(experiment_id)
        if len(experiment.runs) <= after and experiment.status == "running":
            news = self._news.setdefault(experiment_id, asyncio.Event())
            try:
                await asyncio.wait_for(news.wait(), WAIT_S)
            except TimeoutError:
                pass
            experiment = await self.get(experiment_id)
        runs = list(experiment.runs.values())[after:]
        return {"runs": runs, "status": experiment.status, "stopped": experiment.stopped,
                "recorded": len(experiment.runs)}  # fmt: skip

    # the runs

    def _spawn(self, experiment: Experiment, tenant: Tenant) -> None:
        experiment_id = str(experiment.id)
        self.held[experiment_id] = experiment
        task = asyncio.get_running_loop().create_task(self._run(experiment, tenant))
        self._track(experiment_id, task)

    def _track(self, experiment_id: str, task: asyncio.Task[None]) -> None:
        self.tasks[experiment_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            self.tasks.pop(experiment_id, None)
            self.held.pop(experiment_id, None)
            self._wake(experiment_id)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("experiment %s stopped: %r", experiment_id, finished.exception())

        task.add_done_callback(done)

    def _wake(self, experiment_id: str) -> None:
        news = self._news.pop(experiment_id, None)
        if news is not None:
            news.set()

    async def _run(self, experiment: Experiment, tenant: Tenant) -> None:
        request = ExperimentRequest.model_validate(experiment.definition)
        gate = asyncio.Semaphore(request.concurrency)
        judge = request.judge.model_dump() if request.judge is not None else None
        stopped: list[str] = []
        experiment_id = str(experiment.id)

        async def one(source_id: str, variant: dict[str, Any]) -> None:
            async with gate:
                if stopped:
                    return
                if experiment.spent_usd >= request.budget_usd:
                    stopped.append("budget")
                    return
                run = await self._replay(experiment, source_id, variant, judge)
                async with self._writing:
                    experiment.record_run(source_id, variant["name"], run)
                    await self.store.save(experiment)
                self._wake(experiment_id)

        try:
            await asyncio.gather(*(one(s, v) for s, v in experiment.pending()))
            await self._end(experiment, tenant, "completed", stopped[0] if stopped else None)
        except asyncio.CancelledError:
            if experiment_id in self._cancelling:  # asked for; else the actor stops
                self._cancelling.discard(experiment_id)
                await asyncio.shield(self._end(experiment, tenant, "cancelled", "cancelled"))
            raise
        except Exception:
            await self._end(experiment, tenant, "failed", None)
            raise

    async def _end(
        self, experiment: Experiment, tenant: Tenant, status: str, stopped: str | None
    ) -> None:
        async with self._writing:
            experiment.end(status, stopped)
            tenant.close_experiment(str(experiment.id))
            await self.store.save(experiment, tenant)

    async def _replay(
        self,
        experiment: Experiment,
        source_id: str,
        variant: dict[str, Any],
        judge: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """One run: its recorded facts (never its text: that stays in its execution)."""
        run_id = str(uuid.uuid4())
        run: dict[str, Any] = {"execution_id": run_id, "status": "failed", "model": None,
                               "usage": {}, "cost_usd": 0.0, "duration_ms": None}  # fmt: skip
        try:
            plan = await self._plan(experiment, source_id, variant)
            result = (await self.run_whole(plan, run_id)).value
        except CBError as err:
            run["error"] = err.type
            if err.type in ("not_found", "payload_erased"):
                run["execution_id"] = None  # nothing ran
            return run
        metadata = result.get("metadata") or {}
        usage = result.get("usage") or {}
        run.update(status=result["status"], model=metadata.get("model_resolved"),
                   usage={k: usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens",
                                                        "total_tokens")},
                   cost_usd=float(usage.get("cost_usd") or 0.0),
                   duration_ms=metadata.get("duration_ms"))  # fmt: skip
        if judge is not None and run["status"] == "completed":
            verdict = await self.judge(run_id, judge)
            run["score"] = verdict.get("score")
            run["judge_cost_usd"] = float((verdict.get("judge") or {}).get("cost_usd") or 0.0)
        return run

    async def _plan(
        self, experiment: Experiment, source_id: str, variant: dict[str, Any]
    ) -> RunPlan:
        source = await self.runner.stored(source_id)
        if source is None or source.tenant_id != self.runner.tenant_id:
            raise NotFound(f"execution {source_id} not found")
        if source.request.get("erased"):
            raise PayloadErased(f"execution {source_id}'s input was erased")
        metadata = {**(source.request.get("metadata") or {}), "experiment_id": str(experiment.id),
                    "source_execution_id": source_id, "variant": variant["name"]}  # fmt: skip
        request = {**source.request, "metadata": metadata}
        agent = await self._agent(source, variant)
        if source.kind == "chat_completion":
            plan = chat_plan(request, agent)
        else:
            if agent is None:
                raise NotFound(f"agent {source.agent_id} not found")
            plan = agent_plan(agent, request)
        if variant.get("model"):
            plan.model = variant["model"]
        plan.parameters = {**plan.parameters, **(variant.get("parameters") or {})}
        plan.kind = "experiment_run"
        plan.cache, plan.agent_cache, plan.judge = {"mode": "off"}, None, None
        plan.subject_ref = source.subject_ref
        plan.recorded_tools = [dict(call) for call in source.tool_log]
        return plan

    async def _agent(self, source: Execution, variant: dict[str, Any]) -> Agent | None:
        """The agent of the run: the variant's as it is now, else the source's at the
        version it ran (None for a chat completion that named a model)."""
        if variant.get("agent_id"):
            return self.agent_now(variant["agent_id"])
        if not source.agent_id:
            return None
        repository = self.store.app.repository
        agent_id, version = uuid.UUID(source.agent_id), source.agent_version
        return await self.store.run(lambda: repository.get(agent_id, version=version))
