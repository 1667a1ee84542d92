"""Collaborations of one tenant, in its TenantActor: saved definitions, and runs.

A run starts every step whose dependencies have finished (so independent steps run side by
side, each admitted under the tenant's limits like any execution), fills its input from the
run's inputs and earlier outputs, and runs it as a streamed execution of kind
`collaboration_step` whose events are relayed into the run's stream tagged with the step.
Each step's start and end are recorded in the `CollaborationRun` aggregate before the
stream says them, so an actor that comes back resumes the run: finished steps are not run
again, an attempt that was in flight is retried if its `retries` allow.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from actors.event_store import A
from actors.execution_runner import ExecutionRunner
from actors.live_stream import LiveStream
from domain import stream_log
from domain.agent import Agent
from domain.collaboration import (
    Collaboration,
    CollaborationDefinition,
    Step,
    TemplateError,
    checked,
    render,
)
from domain.collaboration_run import (
    INTERRUPTED,
    CollaborationRun,
    as_ranges,
    rebuilt_stream,
    terminal_event,
)
from domain.errors import CBError, Conflict, InvalidRequest, NotFound
from domain.run_plan import RunPlan, agent_plan, chat_plan
from domain.stream_log import TERMINAL_EVENTS
from domain.tenant import Tenant

log = logging.getLogger(__name__)

StepRunner = Callable[[RunPlan, str, LiveStream], Awaitable[None]]
AgentNow = Callable[[str], Agent]  # the tenant's agent as it is (NotFound if none)
WAIT_S = 15.0  # a stream read waits this long for news
RUN_ENDS = ("run_complete", "error")  # the run's own last event (a step's `error` is not relayed)
CANCELLED = {"type": "cancelled", "message": "the run was cancelled, or failed in another step"}
NOT_RETRIED = ("budget_exceeded", "invalid_request", "not_found", "template_error")


class RunLog:
    """A run's stream while it runs here: numbered events, handed out in order and only up
    to the first number still reserved (a step's end is numbered, recorded, then put)."""

    def __init__(self, recorded: list[dict[str, Any]], next_seq: int) -> None:
        self.events: dict[int, dict[str, Any]] = {e["id"]: e for e in recorded}
        self.order: list[int] = sorted(self.events)
        self.reserved: set[int] = set()
        self.next_seq = next_seq
        self.ended = False
        self._changed = asyncio.Event()

    def reserve(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        self.reserved.add(seq)
        return seq

    def put(self, seq: int, name: str | None, data: dict[str, Any]) -> None:
        """The reserved number's event (None: it has none, the change failed)."""
        self.reserved.discard(seq)
        if name is not None:
            self.events[seq] = {"id": seq, "event": name, "data": data}
            bisect.insort(self.order, seq)
        self.wake()

    def emit(self, name: str, data: dict[str, Any]) -> int:
        seq = self.reserve()
        self.put(seq, name, data)
        return seq

    def wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def ready(self, after: int) -> list[dict[str, Any]]:
        """The events after `after` that may be handed out now."""
        limit = min(self.reserved, default=None)
        upto = len(self.order) if limit is None else bisect.bisect_left(self.order, limit)
        return [self.events[s] for s in self.order[bisect.bisect_right(self.order, after) : upto]]

    async def after(self, after: int, wait_s: float) -> list[dict[str, Any]]:
        ready = self.ready(after)
        if ready or self.ended:
            return ready
        changed = self._changed
        try:
            await asyncio.wait_for(changed.wait(), wait_s)
        except TimeoutError:
            return []
        return self.ready(after)


class Collaborations:
    def __init__(
        self,
        runner: ExecutionRunner,
        run_step: StepRunner,
        agent_now: AgentNow,
        checkpoint_s: float,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.run_step = run_step
        self.agent_now = agent_now
        self.checkpoint_s = checkpoint_s
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.held: dict[str, CollaborationRun] = {}
        self.logs: dict[str, RunLog] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._cancelling: set[str] = set()

    # definitions

    async def create(self, tenant: Tenant, body: dict[str, Any], by: str) -> Collaboration:
        definition = checked(body)
        await self._check_targets(definition)
        collaboration = Collaboration(
            id=uuid.uuid4(), tenant_id=tenant.tenant_id, definition=_dumped(definition), by=by
        )
        tenant.add_collaboration(str(collaboration.id))
        await self.store.save(collaboration, tenant)
        return collaboration

    async def update(
        self, collaboration_id: str, changes: dict[str, Any], by: str
    ) -> Collaboration:
        collaboration = await self.definition(collaboration_id)
        definition = checked({**collaboration.definition, **changes})
        await self._check_targets(definition)
        collaboration.update(_dumped(definition), by)
        await self.store.save(collaboration)
        return collaboration

    async def delete(self, tenant: Tenant, collaboration_id: str, by: str) -> None:
        collaboration = await self.definition(collaboration_id)
        collaboration.delete(by)
        tenant.remove_collaboration(collaboration_id)
        await self.store.save(collaboration, tenant)

    async def definition(self, collaboration_id: str) -> Collaboration:
        found = await self._stored(collaboration_id, Collaboration)
        if found is None or found.deleted:
            raise NotFound(f"collaboration {collaboration_id} not found")
        return found

    async def _check_targets(self, definition: CollaborationDefinition) -> None:
        """Every step's agent exists and every model routes: a 400 before anything runs."""
        for step in definition.steps:
            if step.agent_id is not None:
                try:
                    self.agent_now(step.agent_id)
                except NotFound as err:
                    raise InvalidRequest(
                        f"step {step.id!r}: agent {step.agent_id} not found",
                        details={"param": f"steps.{step.id}.agent_id"},
                    ) from err
            else:
                await self.runner.check_model(step.model or "")

    # runs

    async def start(
        self,
        tenant: Tenant,
        definition: CollaborationDefinition,
        inputs: dict[str, Any],
        saved: Collaboration | None,
        by: str,
        run_id: str,
    ) -> CollaborationRun:
        """Record the run's start and run it; a start repeated with the same `run_id` (a
        caller's retry) gets the run it started."""
        started = self.held.get(run_id) or await self._stored(run_id, CollaborationRun)
        if started is not None:
            return started
        definition.check_inputs(inputs)
        await self._check_targets(definition)
        run = CollaborationRun(
            id=uuid.UUID(run_id),
            tenant_id=tenant.tenant_id,
            collaboration_id=str(saved.id) if saved is not None else None,
            version=saved.version if saved is not None else None,
            definition=_dumped(definition),
            inputs=inputs,
            by=by,
        )
        tenant.open_collaboration_run(str(run.id))
        await self.store.save(run, tenant)
        self._spawn(run, tenant, rebuilt_stream(run, {}, 0), 2)
        return run

    def resume(self, tenant: Tenant) -> None:
        """Go on with the runs the tenant had running (after its actor came back)."""
        for run_id in list(getattr(tenant, "running_collaboration_runs", [])):
            if run_id not in self.tasks:
                task = asyncio.get_running_loop().create_task(self._resume(tenant, run_id))
                self.tasks[run_id] = task
                task.add_done_callback(lambda t, r=run_id: self._done(r, t))

    async def _resume(self, tenant: Tenant, run_id: str) -> None:
        run = await self._stored(run_id, CollaborationRun)
        if run is None:
            return
        first = run.resume()
        spec = run.spec
        for step_id, step in run.steps.items():  # an interrupted last attempt: failed for good
            if step["error"] is INTERRUPTED and step["attempts"] > spec.step(step_id).retries:
                run.fail_step(step_id, None, INTERRUPTED, None, True, [], first)
                first += 1
        await self.store.save(run)
        self.held[run_id] = run
        self.logs[run_id] = RunLog(await self._rebuilt(run, 0), first)
        await self._run(run, tenant)

    async def wait(self, run_id: str) -> CollaborationRun:
        """The run once it has ended (it goes on if this caller goes away)."""
        task = self.tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})
        return await self.get(run_id)

    async def cancel(self, run_id: str) -> CollaborationRun:
        """Cancel the running steps (recorded `cancelled`) and end the run `cancelled`."""
        task = self.tasks.get(run_id)
        if task is None:
            run = await self.get(run_id)
            raise Conflict(
                f"collaboration run {run_id} is {run.status}: only a running one can be cancelled",
                details={"status": run.status},
            )
        self._cancelling.add(run_id)
        task.cancel()
        await asyncio.wait({task})
        return await self.get(run_id)

    def stop(self) -> None:
        """The actor stops: runs stop where they are, to resume when it comes back."""
        for task in self.tasks.values():
            task.cancel()

    # reads

    async def get(self, run_id: str) -> CollaborationRun:
        held = self.held.get(run_id)
        if held is not None:
            return held
        found = await self._stored(run_id, CollaborationRun)
        if found is None:
            raise NotFound(f"collaboration run {run_id} not found")
        return found

    async def events(self, run_id: str, after: int) -> dict[str, Any]:
        """The run's stream events after id `after` (waiting up to WAIT_S for one while it
        runs here), and whether it has ended."""
        runlog = self.logs.get(run_id)
        if runlog is not None:
            got = await runlog.after(after, WAIT_S)
            return {"events": got, "ended": bool(got) and got[-1]["event"] in RUN_ENDS}
        run = await self.get(run_id)
        if run.status == "running":  # recorded running, not running here: it resumes soon
            await asyncio.sleep(0.5)
            return {"events": [], "ended": False}
        return {"events": await self._rebuilt(run, after), "ended": True}

    async def _rebuilt(self, run: CollaborationRun, after: int) -> list[dict[str, Any]]:
        executions = {}
        for execution_id in run.relayed:
            execution = await self.runner.stored(execution_id)
            if execution is not None:
                events = stream_log.replay(
                    execution_id, execution.stream_events, 0, None, execution.stream_complete
                )
                executions[execution_id] = [e for e in events if e["event"] not in TERMINAL_EVENTS]
        return rebuilt_stream(run, executions, after)

    async def _stored(self, aggregate_id: str, kind: type[A]) -> A | None:
        return await self.store.owned(aggregate_id, kind, self.runner.tenant_id)

    # running

    def _spawn(
        self, run: CollaborationRun, tenant: Tenant, recorded: list[dict[str, Any]], first: int
    ) -> None:
        run_id = str(run.id)
        self.held[run_id] = run
        self.logs[run_id] = RunLog(recorded, first)
        task = asyncio.get_running_loop().create_task(self._run(run, tenant))
        self.tasks[run_id] = task
        task.add_done_callback(lambda t: self._done(run_id, t))

    def _done(self, run_id: str, finished: asyncio.Task[None]) -> None:
        self.tasks.pop(run_id, None)
        self.held.pop(run_id, None)
        self._locks.pop(run_id, None)
        runlog = self.logs.pop(run_id, None)
        if runlog is not None:
            runlog.ended = True
            runlog.wake()
        if not finished.cancelled() and finished.exception() is not None:
            log.error("collaboration run %s stopped: %r", run_id, finished.exception())

    async def _record(self, run: CollaborationRun, change: Callable[..., None], *args: Any) -> None:
        """Number the change's stream event, record it (`change(*args, seq)`), then put it in
        the stream."""
        run_id = str(run.id)
        runlog = self.logs[run_id]
        seq = runlog.reserve()
        try:
            async with self._locks.setdefault(run_id, asyncio.Lock()):
                change(*args, seq)
                await self.store.save(run)
        finally:
            recorded = next(((n, d) for s, n, d in reversed(run.log) if s == seq), (None, {}))
            runlog.put(seq, *recorded)

    async def _run(self, run: CollaborationRun, tenant: Tenant) -> None:
        run_id = str(run.id)
        spec = run.spec
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while True:
                failed = await self._settle_blocked(run, spec)
                if failed is not None:
                    await _cancelled(running)
                    await self._end(run, tenant, "failed", failed)
                    return
                for step_id in run.ready():
                    if step_id not in running:
                        work = self._step(run, spec.step(step_id))
                        running[step_id] = asyncio.get_running_loop().create_task(work)
                if not running:
                    break
                done, _ = await asyncio.wait(running.values(), return_when=asyncio.FIRST_COMPLETED)
                for step_id in [i for i, t in running.items() if t in done]:
                    running.pop(step_id).result()
            output = run.steps[spec.output or ""]
            if output["status"] == "completed":
                await self._end(run, tenant, "completed", None)
            else:
                error = {
                    "type": "collaboration_failed",
                    "step_id": spec.output,
                    "message": f"the output step {spec.output!r} {output['status']}",
                }
                await self._end(run, tenant, "failed", error)
        except asyncio.CancelledError:
            await asyncio.shield(_cancelled(running))
            if run_id in self._cancelling:  # asked for; else the actor stops
                self._cancelling.discard(run_id)
                error = {"type": "collaboration_cancelled", "message": "the run was cancelled"}
                await asyncio.shield(self._end(run, tenant, "cancelled", error))
            raise
        except Exception as exc:
            await _cancelled(running)
            error = {"type": "internal_error", "message": f"the run stopped: {type(exc).__name__}"}
            await self._end(run, tenant, "failed", error)
            raise

    async def _settle_blocked(
        self, run: CollaborationRun, spec: CollaborationDefinition
    ) -> dict[str, Any] | None:
        """Skip the steps a skipped step or a `skip_dependents` failure blocks; the error that
        fails the run if a step failed under `fail`."""
        for step in spec.steps:
            state = run.steps[step.id]
            if state["status"] == "failed" and step.on_failure == "fail":
                message = (state["error"] or {}).get("message", "")
                return {
                    "type": "step_failed",
                    "step_id": step.id,
                    "message": f"step {step.id!r} failed: {message}",
                }
        for step in spec.steps:  # dependencies first: a skip cascades in one pass
            if run.steps[step.id]["status"] != "pending":
                continue
            for dep in step.depends_on:
                dep_state = run.steps[dep]["status"]
                if dep_state == "skipped" or (
                    dep_state == "failed" and spec.step(dep).on_failure == "skip_dependents"
                ):
                    await self._record(run, run.skip_step, step.id, f"step {dep!r} {dep_state}")
                    break
        return None

    async def _end(
        self, run: CollaborationRun, tenant: Tenant, status: str, error: dict[str, Any] | None
    ) -> None:
        await self._record(run, run.end, status, error)
        tenant.close_collaboration_run(str(run.id))
        await self.store.save(tenant)

    async def _step(self, run: CollaborationRun, step: Step) -> None:
        """Attempts of one step until one completes or its retries are spent."""
        while True:
            outputs = {
                i: s["output"] if s["status"] == "completed" else {"error": s["error"]}
                for i, s in run.steps.items()
                if s["status"] in ("completed", "failed")
            }
            try:
                text = render(step.input, run.inputs, outputs)
            except TemplateError as err:
                error = {"type": "template_error", "message": str(err)}
                await self._record(run, run.fail_step, step.id, None, error, None, True, [])
                return
            execution_id = str(uuid.uuid4())
            await self._record(run, run.start_step, step.id, execution_id, text)
            try:
                ended = await self._attempt(run, step, text, execution_id)
            except asyncio.CancelledError:  # the run was cancelled, or failed elsewhere
                cancelled = (step.id, execution_id, CANCELLED, None, True, [])
                await asyncio.shield(self._record(run, run.fail_step, *cancelled))
                raise
            error, usage, seqs = ended["error"], ended["usage"], ended["seqs"]
            if error is None:
                completed = (step.id, execution_id, ended["output"], usage, ended["duration_ms"])
                await self._record(run, run.complete_step, *completed, seqs)
                return
            attempts = run.steps[step.id]["attempts"]
            final = attempts > step.retries or error.get("type") in NOT_RETRIED
            await self._record(run, run.fail_step, step.id, execution_id, error, usage, final, seqs)
            if final:
                return

    async def _attempt(
        self, run: CollaborationRun, step: Step, text: str, execution_id: str
    ) -> dict[str, Any]:
        """One execution of the step, its events relayed into the run's stream; what it
        gave: output, usage, duration, error (None when it completed), relayed numbers."""
        runlog = self.logs[str(run.id)]
        plan = self._plan(run, step, text)
        live = LiveStream(execution_id, False, self.checkpoint_s)
        task = asyncio.get_running_loop().create_task(self.run_step(plan, execution_id, live))
        live.task = task
        numbers: list[int] = []

        async def relay() -> None:
            async for batch in live.watch(0):
                for item in batch:
                    if item["event"] not in TERMINAL_EVENTS:
                        numbers.append(
                            runlog.emit(item["event"], {**item["data"], "step_id": step.id})
                        )

        relaying = asyncio.get_running_loop().create_task(relay())
        timed_out = False
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait({task}, timeout=step.timeout_s)
            if not done:
                timed_out = True
                task.cancel()
                await asyncio.wait({task})
            await relaying
        except asyncio.CancelledError:
            task.cancel()
            relaying.cancel()
            await asyncio.shield(asyncio.wait({task, relaying}))
            raise
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            error = (
                exc.to_dict()
                if isinstance(exc, CBError)
                else {"type": "internal_error", "message": type(exc).__name__}
            )
            return _ended(None, {}, None, error, numbers)
        last = live.events[-1] if live.events else {"event": None, "data": {}}
        if not timed_out and last["event"] == "execution_complete":  # durable before sent
            error, result = None, last["data"]
        else:
            error, result = await self._failure(step, execution_id, timed_out, last)
        usage = {
            k: v
            for k, v in (result.get("usage") or {}).items()
            if k in ("prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")
        }
        output = ((result.get("response") or {}).get("content") or "") if error is None else None
        duration = (result.get("metadata") or {}).get("duration_ms")
        if duration is None:
            duration = round((time.monotonic() - started) * 1000, 3)
        if error is not None:
            error = {k: error[k] for k in ("type", "message") if k in error}
        return _ended(output, usage, duration, error, numbers)

    async def _failure(
        self, step: Step, execution_id: str, timed_out: bool, last: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Why an attempt did not complete, and its recorded result (usage so far)."""
        execution = await self.runner.stored(execution_id)
        result = execution.result if execution is not None else {}
        if timed_out:
            message = f"step {step.id!r} ran longer than its {step.timeout_s} s"
            return {"type": "step_timeout", "message": message}, result
        if execution is None:  # refused before it was recorded (a budget): said in the stream
            said = {k: v for k, v in last["data"].items() if k in ("type", "message")}
            return said or {"type": "internal_error", "message": "the step did not start"}, result
        status = execution.status
        error = result.get("error") or {
            "type": status,
            "message": f"the step's execution {status}",
        }
        return error, result

    def _plan(self, run: CollaborationRun, step: Step, text: str) -> RunPlan:
        metadata = {"collaboration_run_id": str(run.id), "step_id": step.id}
        if run.collaboration_id:
            metadata["collaboration_id"] = run.collaboration_id
        parameters = step.parameters.set_values()
        if step.agent_id is not None:
            body = {"prompt": text, "metadata": metadata, "parameters": parameters}
            plan = agent_plan(self.agent_now(step.agent_id), body)
        else:
            messages = (
                [{"role": "system", "content": step.system_prompt}] if step.system_prompt else []
            )
            messages.append({"role": "user", "content": text})
            job = {
                "model": step.model,
                "messages": messages,
                "parameters": parameters,
                "tools": [],
                "metadata": metadata,
            }
            plan = chat_plan(job, None)
        plan.kind = "collaboration_step"
        return plan


def _ended(
    output: str | None,
    usage: dict[str, Any],
    duration_ms: float | None,
    error: dict[str, Any] | None,
    numbers: list[int],
) -> dict[str, Any]:
    return {
        "output": output,
        "usage": usage,
        "duration_ms": duration_ms,
        "error": error,
        "seqs": as_ranges(numbers),
    }


async def _cancelled(running: dict[str, asyncio.Task[None]]) -> None:
    for task in running.values():
        task.cancel()
    if running:
        await asyncio.wait(running.values())


def _dumped(definition: CollaborationDefinition) -> dict[str, Any]:
    return definition.model_dump(mode="json", exclude_none=False)


__all__ = ["Collaborations", "RunLog", "terminal_event"]
