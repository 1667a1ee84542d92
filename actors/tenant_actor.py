"""TenantActor: one tenant's isolated runtime — its agents, limits and executions.

The actor is the Ray shell: lifecycle (load on first use, evict when idle), admission under
the tenant's limits, and streams. Commands that change the tenant or its agents are
`TenantCommands`, which it delegates to; executions run in its `ExecutionRunner`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from actors import (
    config_actor,
    heap,
    metrics,
    names,
    projection_actor,
    provider_actor,
    spare_workers,
    tracing,
)
from actors.collaborations import Collaborations
from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.experiments import Experiments
from actors.http_client import shared_client
from actors.idempotency_keys import IdempotencyKeys
from actors.interrupted_runs import interruption
from actors.live_stream import LiveStream, checkpoint_interval
from actors.log_setup import bind_execution, configure_logging
from actors.peers import Peers
from actors.placement import tenant_options
from actors.provider_check import check_provider
from actors.quality import Quality
from actors.replies import WithHeaders, replies, unwrap
from actors.response_cache import ResponseCache
from actors.secrets import SecretBox
from actors.settings import Settings
from actors.state_agents import StateAgentRunner
from actors.stream_channel import Framer, StreamChannel
from actors.tenant_budgets import TenantBudgets
from actors.tenant_commands import TenantCommands, effective_limits
from actors.unrecorded_ends import EndNotRecorded
from domain import shredding, stream_log
from domain.attempts import first_id_before
from domain.chat_completions import ChunkFramer, chat_headers
from domain.collaboration import checked as checked_collaboration
from domain.collaboration_run import state_of as run_state
from domain.config import Config, TenantDefaults
from domain.errors import (
    BudgetExceeded,
    CBError,
    Conflict,
    ExecutionInterrupted,
    RateLimited,
    ResumeUnavailable,
)
from domain.execution import Execution
from domain.experiment import state_of as experiment_state
from domain.run_plan import RunPlan, agent_plan, chat_plan
from domain.sse import frame_batch, frame_batch_without_usage
from domain.tenant_limits import LimitGate

log = logging.getLogger(__name__)


@ray.remote
class TenantActor:
    """Owns the tenant aggregate and its agents in memory; rebuilt from the store on start."""

    def __init__(self, settings: Settings, tenant_id: str) -> None:
        spare_workers.mark_taken()
        configure_logging(settings, "tenant", tenant_id=tenant_id)
        self.settings = settings
        self.tenant_id = tenant_id
        self.created_at = time.time()
        self.loaded_at: float | None = None  # when its state was read (the first call)
        self.store = AsyncEventStore(settings)
        # empty until the first _load asks the config actor (never the file as it lies: an
        # operator may be editing it)
        empty = Config(providers={}, models={})
        self.runner = ExecutionRunner(empty, self.store, tenant_id, _peers(settings))
        self.runner.write_timeout_s = settings.store_write_timeout_s
        self.runner.cache = ResponseCache(settings, tenant_id, shared_client)
        self.commands = TenantCommands(tenant_id, self.store, SecretBox(settings), self.runner)
        self.budgets = TenantBudgets(self.commands)
        self.state_agents = StateAgentRunner(lambda plan, run_id: self._whole(plan, run_id, False))
        self.quality = Quality(self.runner, lambda plan, run_id: self._whole(plan, run_id, False))
        self.experiments = Experiments(
            self.runner, lambda plan, run_id: self._whole(plan, run_id, False),
            self.quality.judge, self.commands.agent,
        )  # fmt: skip
        self.collaborations = Collaborations(
            self.runner, self._step, self.commands.agent, settings.stream_checkpoint_s
        )
        defaults = TenantDefaults()
        self.gate = LimitGate(effective_limits(defaults, {}), time.monotonic())
        self.idle_evict_s = settings.tenant_idle_evict_s or defaults.idle_evict_s
        self.live: dict[str, LiveStream] = {}
        self.keys = IdempotencyKeys(self.store, tenant_id)
        # what a claimed idempotency key's first request is doing (an execution, an agent)
        self.keyed: dict[str, asyncio.Task[Any]] = {}
        # executions also come over the channel's call line (one socket per replica)
        calls = (self.execute, self.complete_chat, self.execute_stream, self.complete_chat_stream)
        self.channel = StreamChannel({call.__name__: call for call in calls})
        self.last_used = time.monotonic()
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None
        metrics.start(settings, "tenant")
        tracing.setup(settings, "tenant-actor")
        metrics.watch("tenant", lambda rec: rec.set("cb_tenant_actors_alive", 1))
        heap.settle(collect=False)  # a spare worker collected before it took the actor

    async def _load(self) -> TenantCommands:
        """The tenant's state, read from the store once per incarnation; marks it used."""
        self.last_used = time.monotonic()
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._evict_when_idle())
        if self._loaded:
            return self.commands
        async with self._load_lock:
            if self._loaded:
                return self.commands
            # the configuration and routing views come from other actors while the store reads
            await self.commands.load(self.runner.routing.refresh())
            defaults = self.runner.config.tenant_defaults
            self.idle_evict_s = self.settings.tenant_idle_evict_s or defaults.idle_evict_s
            tenant = self.commands.tenant
            own = tenant.limits if tenant is not None else {}
            self.gate = LimitGate(effective_limits(defaults, own), time.monotonic())
            if tenant is not None:
                await self.runner.fail_interrupted()
                await self.budgets.load()
                self.experiments.resume(tenant)
                self.collaborations.resume(tenant)
            self._loaded = True
            self.loaded_at = time.time()
        return self.commands

    def _idle(self) -> bool:
        return (
            self.gate.running == 0
            and not self.state_agents.scheduled  # a scheduled run keeps the actor up
            and not self.quality.judging  # as does a judge at work
            and not self.experiments.tasks  # and a running experiment
            and not self.collaborations.tasks  # and a collaboration run
            and time.monotonic() - self.last_used > self.idle_evict_s
        )

    async def _evict_when_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_evict_s / 2, 30.0))
            if self._idle():
                # exit through a method call: Ray ends an async actor only from inside one
                ray.get_runtime_context().current_actor.retire.remote()
                return

    async def retire(self) -> bool:
        """Stop this actor if it is still idle; calls queued behind this one are retried."""
        if not self._idle():
            self._reaper = asyncio.get_running_loop().create_task(self._evict_when_idle())
            return False
        log.info("tenant %s idle for %.0f s, evicting its actor", self.tenant_id, self.idle_evict_s)
        return await self.stop()

    async def config_changed(self) -> None:
        """The config actor's word that the configuration changed: ask for it now."""
        self.runner.routing.config_changed()

    async def stop(self) -> bool:
        """Stop now (the tenant is being erased): end its stdio servers, close the store."""
        for live in list(self.live.values()):
            if live.task is not None:
                live.task.cancel()
        self.state_agents.stop()
        for task in list(self.quality.judging):
            task.cancel()
        self.experiments.stop()
        self.collaborations.stop()
        await self.runner.tools.close()  # ends the tenant's stdio server processes
        if self.runner.cache is not None:
            await self.runner.cache.close()
        self.store.close()
        self.channel.close()
        await metrics.leave()
        tracing.flush()
        ray.actor.exit_actor()
        return True

    # Commands: each is `TenantCommands`' method of the same concept, behind one reply.

    @replies
    async def create_tenant(self, name: str, by: str | None = None) -> dict[str, Any]:
        return await (await self._load()).create_tenant(name, by)

    @replies
    async def issue_api_key(
        self, scopes: list[str], expires_at: float | None, by: str | None = None
    ) -> dict[str, Any]:
        return await (await self._load()).issue_api_key(scopes, expires_at, by)

    @replies
    async def revoke_api_key(self, key_id: str, by: str) -> dict[str, Any]:
        return await (await self._load()).revoke_api_key(key_id, by)

    @replies
    async def set_limits(self, own: dict[str, Any], by: str) -> dict[str, Any]:
        """The tenant's own limits (omitted fields take the configured defaults), at once."""
        limits = await (await self._load()).set_limits(own, by)
        self.gate.reconfigure(limits, time.monotonic())
        return self.gate.as_api(time.monotonic())

    @replies
    async def set_retention(self, retention: dict[str, Any] | None, by: str) -> dict[str, Any]:
        return await (await self._load()).set_retention(retention, by)

    @replies
    async def get_retention(self) -> dict[str, Any]:
        return (await self._load()).retention()

    @replies
    async def erase_subject(self, subject: str, by: str) -> dict[str, Any]:
        """Destroy the data subject's payload keys (crypto-shredding): everything sealed
        under them, wherever it is, is unreadable from now on. Audited with the counts."""
        tenant = (await self._load()).require_tenant()
        ref = shredding.subject_ref(self.tenant_id, subject)
        keys = await self.store.run(self.store.payload_keys.destroy, self.tenant_id, ref)
        projections = projection_actor.handle(self.settings)
        executions = unwrap(await projections.forget_payload_keys.remote(self.tenant_id, ref))
        tenant.record_subject_erased(ref, executions, keys, by)
        await self.store.save(tenant)
        return {"subject_ref": ref, "executions": executions, "keys_destroyed": keys}

    @replies
    async def get_limits(self) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return self.gate.as_api(time.monotonic())

    @replies
    async def set_budget(self, scope: str, budget: dict[str, Any], by: str) -> dict[str, Any]:
        """Set the budget of `tenant` or `agent:<id>`; in force for the next admission."""
        await self._load()
        return await self.budgets.put(scope, budget, by)

    @replies
    async def get_budget(self, scope: str) -> dict[str, Any]:
        await self._load()
        return self.budgets.status(scope)

    @replies
    async def list_budgets(self) -> dict[str, Any]:
        await self._load()
        return self.budgets.listing()

    @replies
    async def remove_budget(self, scope: str, by: str) -> dict[str, Any]:
        await self._load()
        return await self.budgets.remove(scope, by)

    @replies
    async def describe(self) -> dict[str, Any]:
        return (await self._load()).describe()

    @replies
    async def set_model_mapping(
        self, name: str, mapping: dict[str, Any], by: str
    ) -> dict[str, Any]:
        return await (await self._load()).set_model_mapping(name, mapping, by)

    @replies
    async def list_model_mappings(self) -> dict[str, Any]:
        return (await self._load()).list_model_mappings()

    @replies
    async def remove_model_mapping(self, name: str, by: str) -> dict[str, Any]:
        return await (await self._load()).remove_model_mapping(name, by)

    @replies
    async def set_model_policy(self, policy: dict[str, Any], by: str) -> dict[str, Any]:
        return await (await self._load()).set_model_policy(policy, by)

    @replies
    async def get_model_policy(self) -> dict[str, Any]:
        return (await self._load()).get_model_policy()

    @replies
    async def models_view(self) -> dict[str, Any]:
        return await (await self._load()).models_listing()

    @replies
    async def set_provider_credential(self, provider: str, api_key: str, by: str) -> dict:
        """The tenant's own provider key (the route's name for it: provider credential)."""
        return await (await self._load()).set_own_provider_key(provider, api_key, by)

    @replies
    async def list_provider_credentials(self) -> dict[str, Any]:
        return (await self._load()).list_own_provider_keys()

    @replies
    async def remove_provider_credential(self, provider: str, by: str) -> dict[str, Any]:
        return await (await self._load()).remove_own_provider_key(provider, by)

    @replies
    async def register_mcp_server(
        self, server: dict[str, Any], secrets: dict[str, dict[str, str]], by: str
    ) -> dict[str, Any]:
        return await (await self._load()).register_mcp_server(server, secrets, by)

    @replies
    async def list_mcp_servers(self) -> dict[str, Any]:
        return (await self._load()).list_mcp_servers()

    @replies
    async def remove_mcp_server(self, server_id: str, by: str) -> dict[str, Any]:
        return await (await self._load()).remove_mcp_server(server_id, by)

    @replies
    async def refresh_mcp_server(self, server_id: str) -> dict[str, Any]:
        return await (await self._load()).refresh_mcp_server(server_id)

    @replies
    async def list_tools(self) -> dict[str, Any]:
        return await (await self._load()).list_tools()

    @replies
    async def create_agent(
        self,
        definition: dict[str, Any],
        credential: dict[str, str] | None = None,
        by: str | None = None,
        idempotency_key: str | None = None,
    ) -> WithHeaders:
        """Create an agent; under an idempotency key, a repeat answers with the agent the
        first request created."""
        commands = await self._load()
        if idempotency_key is None:
            return WithHeaders(await commands.create_agent(definition, credential, by))

        async def create(agent_id: str) -> dict[str, Any]:
            return await commands.create_agent(definition, credential, by, agent_id)

        async def created(agent_id: str) -> dict[str, Any] | None:
            return commands.get_agent(agent_id) if agent_id in commands.agents else None

        body = {"definition": definition, "credential": bool(credential)}
        agent, replayed = await self._once(
            idempotency_key, "create_agent", body, str(uuid.uuid4()), create, created
        )
        return WithHeaders(agent, REPLAYED if replayed else {})

    @replies
    async def install_agents(
        self, definitions: list[dict[str, Any]], by: str | None = None
    ) -> dict[str, Any]:
        return await (await self._load()).install_agents(definitions, by)

    @replies
    async def list_agents(self) -> list[dict[str, Any]]:
        return (await self._load()).list_agents()

    @replies
    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return (await self._load()).get_agent(agent_id)

    @replies
    async def update_agent(
        self, agent_id: str, changes: dict[str, Any], by: str | None = None
    ) -> dict[str, Any]:
        return await (await self._load()).update_agent(agent_id, changes, by)

    @replies
    async def delete_agent(self, agent_id: str, by: str | None = None) -> dict[str, Any]:
        return await (await self._load()).delete_agent(agent_id, by)

    @replies
    async def create_state_agent_config(
        self, config: dict[str, Any], by: str | None = None
    ) -> dict[str, Any]:
        return await (await self._load()).create_state_agent_config(config, by)

    @replies
    async def list_state_agent_configs(self, state_id: str | None) -> list[dict[str, Any]]:
        return (await self._load()).state_agent_configs(state_id)

    # legacy imports (`cb migrate`, through the admin API)

    @replies
    async def import_legacy(self, body: dict[str, Any], by: str | None = None) -> dict[str, Any]:
        """Plan (with `dry_run`) or run an import of legacy records (`actors.legacy_imports`)."""
        return await (await self._load()).imports.run(body, by)

    @replies
    async def describe_migration(self, migration_id: str) -> dict[str, Any]:
        return await (await self._load()).imports.describe(migration_id)

    @replies
    async def roll_back_migration(self, migration_id: str, by: str | None = None) -> dict:
        return await (await self._load()).imports.roll_back(migration_id, by)

    @replies
    async def trigger_state_agents(
        self, resource_id: str, state_id: str, data: Any
    ) -> list[dict[str, Any]]:
        """Run the state's enabled agent configurations for the resource (see
        `actors.state_agents`); one answer per configuration."""
        commands = await self._load()
        configs = commands.state_agent_configs(state_id)
        return await self.state_agents.trigger(configs, commands.agent, resource_id, data)

    # Idempotency keys: a repeat gets what the first request did, never a second run.

    async def _once(
        self,
        key: str,
        operation: str,
        body: Any,
        target: str,
        work: Callable[[str], Awaitable[Any]],
        stored: Callable[[str], Awaitable[Any | None]],
    ) -> tuple[Any, bool]:
        """Do `work(target)` once per key: a repeat waits for the first (which then runs on
        even if its own caller goes away) or reads what it left (`stored`); and whether this
        was a repeat. A first request that never got as far as leaving anything is run
        again, under its own target."""
        claim = await self.keys.claim(key, operation, body, target)
        task = self.keyed.get(claim.target)
        if task is None:  # made without an await since the check: one task per target
            task = asyncio.get_running_loop().create_task(
                _first_or_stored(claim.target, claim.fresh, work, stored)
            )
            self.keyed[claim.target] = task
            task.add_done_callback(lambda done: self._unkey(claim.target, done))
        return await asyncio.shield(task), not claim.fresh

    def _unkey(self, target: str, done: asyncio.Task[Any]) -> None:
        self.keyed.pop(target, None)
        if not done.cancelled():
            done.exception()  # retrieved: every waiter may have gone

    async def _recorded_result(self, execution_id: str) -> WithHeaders | None:
        """A keyed execution's recorded end, as its first answer was (an error raised); None
        when it never started."""
        execution = await self.runner.stored(execution_id)
        if execution is None:
            return None
        if execution.status == "running":
            raise Conflict(
                f"execution {execution_id} of this Idempotency-Key is still running",
                execution_id=execution_id,
            )
        result = execution.result
        if execution.status != "completed" and result.get("error"):
            raise CBError.from_dict(result["error"])
        return WithHeaders(result, dict(REPLAYED))

    # Executions: admitted under the tenant's limits, run by the runner.

    async def _plan(
        self, agent_id: str | None, body: dict[str, Any], chat: bool, traceparent: str | None
    ) -> RunPlan:
        """The execution's plan; `traceparent` is the caller's trace context (W3C), if any."""
        commands = await self._load()
        if not chat:
            plan = agent_plan(commands.agent(agent_id or ""), body)
        else:
            commands.require_tenant()
            plan = chat_plan(body, commands.agent(agent_id) if agent_id else None)
        plan.traceparent = traceparent
        if plan.judge is None and commands.tenant is not None:
            plan.judge = getattr(commands.tenant, "judge", None)
        return plan

    @replies
    async def execute(
        self,
        agent_id: str,
        body: dict[str, Any],
        execution_id: str,
        retried: bool = False,
        traceparent: str | None = None,
    ) -> WithHeaders:
        """Run one execution to its end; a retried call answers from the store if it ran."""
        key = body.pop("idempotency_key", None)
        plan = await self._plan(agent_id, body, False, traceparent)
        if key is not None:
            return await self._keyed_whole(key, f"execute:{agent_id}", plan, execution_id)
        return await self._whole(plan, execution_id, retried)

    @replies
    async def complete_chat(
        self,
        job: dict[str, Any],
        agent_id: str | None,
        execution_id: str,
        retried: bool = False,
        traceparent: str | None = None,
    ) -> WithHeaders:
        """A chat completion (`ChatCompletionRequest.as_job()`) run to its end, like `execute`."""
        key = job.pop("idempotency_key", None)
        plan = await self._plan(agent_id, job, True, traceparent)
        if key is not None:
            return await self._keyed_whole(key, "chat_completion", plan, execution_id)
        return await self._whole(plan, execution_id, retried)

    async def _keyed_whole(
        self, key: str, operation: str, plan: RunPlan, execution_id: str
    ) -> WithHeaders:
        """An execution under an idempotency key: run once, to its end even if its caller
        goes away, so that the caller's retry gets its answer."""

        async def run(target: str) -> WithHeaders:
            return await self._whole(plan, target, False)

        async def left(target: str) -> WithHeaders | None:
            """What the first left; an interrupted first runs again (`_whole`, retried)."""
            execution = await self.runner.stored(target)
            if execution is not None and self.runner.interrupted.orphaned(execution):
                return await self._whole(plan, target, True)
            return await self._recorded_result(target)

        reply, replayed = await self._once(key, operation, plan.request, execution_id, run, left)
        if replayed and isinstance(reply, WithHeaders):
            return WithHeaders(reply.value, {**reply.headers, **REPLAYED})
        return reply

    def _admit(self, plan: RunPlan, execution_id: str) -> int:
        """Let the execution in under the tenant's limits: its reservation. A refusal gives up
        its claim as an interrupted execution's new attempt, if it had one."""
        try:
            return self.gate.admit(time.monotonic(), plan.estimated_tokens)
        except BaseException:
            self.runner.interrupted.release(execution_id)
            raise

    async def _whole(self, plan: RunPlan, execution_id: str, retried: bool) -> WithHeaders:
        """Admit and run; a retried call runs an interrupted execution again as a new attempt
        (`actors.interrupted_runs`), or answers that it ran."""
        bind_execution(self.tenant_id, execution_id)  # this task's log lines name it
        restart = await self.runner.interrupted.claim(execution_id) if retried else None
        reserved = self._admit(plan, execution_id)
        headers = self.gate.headers(time.monotonic())  # what was left once it was let in
        used = None
        try:
            result = await self.runner.execute(plan, execution_id, restart)
            used = result["usage"]["total_tokens"]
            self.quality.judge_later(plan, execution_id)
            if restart is not None:
                headers[ATTEMPT_HEADER] = str(restart.attempt)
            return WithHeaders(result, headers)
        finally:
            self.gate.settle(time.monotonic(), reserved, used)
            self._settle_budget(execution_id)
            self.last_used = time.monotonic()

    @replies
    async def execute_stream(
        self,
        agent_id: str,
        body: dict[str, Any],
        execution_id: str,
        cancel_on_disconnect: bool,
        retried: bool = False,
        traceparent: str | None = None,
    ) -> WithHeaders:
        """Start a streamed execution; where to read its events (see `StreamChannel`).

        When the last reader goes away the execution is cancelled, or with
        `cancel_on_disconnect=False` runs on to its end. With `stream_options.include_usage`
        false, no `usage_update` events are sent.
        """
        key = body.pop("idempotency_key", None)
        plan = await self._plan(agent_id, body, False, traceparent)
        usage = (body.get("stream_options") or {}).get("include_usage", True)
        framer = frame_batch if usage else frame_batch_without_usage
        if key is not None:
            operation = f"execute_stream:{agent_id}"
            claim = await self.keys.claim(key, operation, body, execution_id)
            if not claim.fresh:
                joined = await self._join_stream(claim.target, framer)
                if joined is not None:
                    return joined
            execution_id = claim.target
        return await self._streamed(plan, execution_id, retried, cancel_on_disconnect, framer)

    @replies
    async def complete_chat_stream(
        self,
        job: dict[str, Any],
        agent_id: str | None,
        execution_id: str,
        include_usage: bool,
        retried: bool = False,
        traceparent: str | None = None,
    ) -> WithHeaders:
        """Start a streamed chat completion once it is routed (a refusal or a routing failure
        is the reply, not a stream); its channel offer frames OpenAI's chunks. A client that
        goes away cancels it."""
        key = job.pop("idempotency_key", None)
        plan = await self._plan(agent_id, job, True, traceparent)
        if key is not None:
            claim = await self.keys.claim(key, "chat_completion_stream", job, execution_id)
            if not claim.fresh:
                framer = ChunkFramer(claim.target, include_usage)
                joined = await self._join_stream(claim.target, framer)
                if joined is not None:
                    return joined
            execution_id = claim.target
        framer = ChunkFramer(execution_id, include_usage)
        return await self._streamed(plan, execution_id, retried, True, framer, routed_first=True)

    async def _join_stream(self, execution_id: str, framer: Framer) -> WithHeaders | None:
        """A keyed stream's repeat: its events from the first, live while it runs, else as
        recorded; None when it never started (the repeat runs it)."""
        live = self.live.get(execution_id)
        if live is None:
            execution = await self.runner.stored(execution_id)
            if execution is None:
                return None
            if execution.stream:
                live = await self._restart_stream(execution)
                if live is None and execution.status == "running":  # it was failed meanwhile
                    execution = await self.runner.stored(execution_id) or execution
            if live is None:
                if execution.status == "running" or not execution.stream:
                    raise Conflict(
                        f"execution {execution_id} of this Idempotency-Key is {execution.status}"
                        + ("" if execution.stream else ", and was not streamed"),
                        execution_id=execution_id,
                    )
                events = stream_log.replay(
                    execution_id, execution.stream_events, 0, _terminal(execution),
                    execution.stream_complete,
                )  # fmt: skip
                live = LiveStream.replayed(execution_id, events)
        headers = {**REPLAYED, "x-cb-execution-id": execution_id}
        return WithHeaders(await self.channel.offer(live, 0, framer), headers)

    async def _streamed(
        self,
        plan: RunPlan,
        execution_id: str,
        retried: bool,
        cancel_on_disconnect: bool,
        framer: Framer,
        routed_first: bool = False,
    ) -> WithHeaders:
        """Admit, start the run as a task, offer its events framed by `framer`. With
        `routed_first`, the start is recorded and routed before the reply (which then names
        the route in `x-cb-*` headers); otherwise a routing failure ends the stream."""
        bind_execution(self.tenant_id, execution_id)  # and its task's, made below
        restart = await self.runner.interrupted.claim(execution_id) if retried else None
        reserved = self._admit(plan, execution_id)
        headers = self.gate.headers(time.monotonic())  # what was left once it was let in
        live = self._live(execution_id, restart, cancel_on_disconnect)
        if restart is not None:
            headers[ATTEMPT_HEADER] = str(restart.attempt + 1)
        if routed_first or self.runner.budget_refuses(plan):
            # begun before the reply, so a hard budget's refusal is the reply, not the stream
            try:
                run = await self.runner.begin(
                    plan,
                    execution_id,
                    stream=True,
                    live=None if routed_first else live,
                    restart=restart,
                )
            except BaseException as exc:
                # a refusal, or a start the store did not take, is the reply (a 503 for this)
                replied = (BudgetExceeded, EndNotRecorded)
                if routed_first or not isinstance(exc, CBError) or isinstance(exc, replied):
                    self.gate.settle(time.monotonic(), reserved, None)
                    self._settle_budget(execution_id)
                    raise
                run = None  # a routing failure: recorded, and the stream's error event
            if routed_first and run is not None:
                first = run.route.chain[0]
                provider = self.runner.config.models[first].provider
                headers.update(chat_headers(execution_id, first, provider))
            work = self.runner.stream(run, live) if run is not None else _ended()
        else:
            work = self.runner.execute_stream(plan, execution_id, live, restart)
        self._run_live(plan, live, work, reserved)
        return WithHeaders(await self.channel.offer(live, 0, framer), headers)

    def _pace(self) -> float:
        """Seconds between a stream's checkpoints as many streams run here now: together they
        checkpoint at most `stream_checkpoints_per_s` times a second (each is a store write
        and an estimated `usage_update`)."""
        return checkpoint_interval(len(self.live), self.settings.stream_checkpoints_per_s)

    def _live(
        self, execution_id: str, restart: Execution | None, cancel_on_disconnect: bool
    ) -> LiveStream:
        """The live stream of a new execution, or of `restart`'s next attempt: its ids above
        any of the earlier attempt's (`domain.attempts`), opening with `attempt_restarted`."""
        checkpoint_s = self.settings.stream_checkpoint_s
        if restart is None:
            return LiveStream(execution_id, cancel_on_disconnect, checkpoint_s, 0, self._pace)
        attempt = restart.attempt + 1
        before = first_id_before(attempt)
        live = LiveStream(execution_id, cancel_on_disconnect, checkpoint_s, before, self._pace)
        live.emit("attempt_restarted", {
            "execution_id": execution_id, "attempt": attempt,
            "reason": interruption(execution_id).to_dict(),
        })  # fmt: skip
        return live

    def _run_live(
        self, plan: RunPlan, live: LiveStream, work: Awaitable[None], reserved: int
    ) -> None:
        """Run a streamed execution's work as the task of `live`, kept here until it ends."""
        execution_id = live.execution_id
        self.live[execution_id] = live
        live.task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        live.task.add_done_callback(lambda _: self._finished(plan, execution_id, reserved))

    @replies
    async def resume_stream(self, execution_id: str, after: int) -> dict[str, Any]:
        """The events of a streamed execution after id `after`: a channel offer if it is
        running here, else `{"events": […]}` replayed from the store."""
        (await self._load()).require_tenant()
        live = self.live.get(execution_id)
        try:
            if live is None:
                execution = await self.runner.recorded_stream(execution_id)
                live = await self._restart_stream(execution)
                if live is None and execution.status == "running":  # it was failed meanwhile
                    execution = await self.runner.recorded_stream(execution_id)
            if live is None:
                events = stream_log.replay(
                    execution_id,
                    execution.stream_events,
                    after,
                    _terminal(execution),
                    execution.stream_complete,
                )
                return {"events": events}
            if after > live.last_id:
                raise ResumeUnavailable(
                    f"event {after} has not been sent; the stream is at {live.last_id}",
                    execution_id=execution_id,
                    details={"last_event_id": after, "replayable_to": live.last_id},
                )
        except ResumeUnavailable as err:
            # said in the stream, without an id, so the client's position stands
            return {"events": [{"event": "error", "data": err.to_dict()}]}
        return await self.channel.offer(live, after)

    async def _restart_stream(self, execution: Execution) -> LiveStream | None:
        """An interrupted streamed execution run again as a new attempt, for the client that
        came back to it (`actors.interrupted_runs`); its live stream, running to its end. None
        when it is not interrupted or may not run again (then recorded `failed`)."""
        execution_id = str(execution.id)
        if not self.runner.interrupted.orphaned(execution):
            return None
        chat = execution.kind == "chat_completion"
        plan = await self._plan(execution.agent_id or None, dict(execution.request), chat, None)
        try:
            restart = await self.runner.interrupted.claim(execution_id)
        except ExecutionInterrupted:  # another reader restarted it meanwhile, or it may not
            return self.live.get(execution_id)
        if restart is None:
            return None
        reserved = self._admit(plan, execution_id)
        live = self._live(execution_id, restart, cancel_on_disconnect=False)
        self._run_live(plan, live, self.runner.execute_stream(plan, execution_id, live, restart),
                       reserved)  # fmt: skip
        return live

    @replies
    async def cancel_stream(self, execution_id: str) -> bool:
        """Cancel a streamed execution running here, and return once its cancellation is
        durable; False when none runs here (it ended, or never streamed)."""
        (await self._load()).require_tenant()
        live = self.live.get(execution_id)
        if live is None or live.task is None or live.task.done():
            return False
        live.task.cancel()
        await asyncio.wait({live.task})
        return True

    @replies
    async def live_state(self, execution_id: str) -> dict[str, Any] | None:
        """Content and usage so far of a streamed execution running here, else None."""
        live = self.live.get(execution_id)
        return live.state() if live is not None else None

    def _finished(self, plan: RunPlan, execution_id: str, reserved: int) -> None:
        live = self.live.pop(execution_id, None)
        if live is not None and live.task is not None and not live.task.cancelled():
            self.quality.judge_later(plan, execution_id)  # it checks the execution completed
        used = (live.usage or {}).get("total_tokens") if live is not None else None
        self.gate.settle(time.monotonic(), reserved, used)
        self._settle_budget(execution_id)
        self.last_used = time.monotonic()

    def _settle_budget(self, execution_id: str) -> None:
        """Charge an ended execution's cost to its budgets; record thresholds it crossed."""
        crossings = self.runner.settle_budget(execution_id)
        if crossings:
            self.budgets.record(crossings).add_done_callback(_log_failed_save)

    @replies
    async def clear_cache(self, by: str) -> int:
        """Forget every cached answer of the tenant (in the cache store, for every node)."""
        commands = await self._load()
        tenant = commands.require_tenant()
        deleted = await self.runner.cache.clear()
        tenant.record_cache_cleared(deleted, by)
        await self.store.save(tenant)
        return deleted

    @replies
    async def check_provider(self, provider: str) -> dict[str, Any]:
        """A real health check of `provider`, with this tenant's key for it if it has one."""
        await self._load()
        await self.runner.routing.fresh()
        return await check_provider(self.runner.caller, provider)

    @replies
    async def call_line(self) -> dict[str, Any]:
        """Where a replica opens its call line for executions (see `actors.call_line`)."""
        return await self.channel.call_address()

    # Quality: feedback and judges (`actors.quality`)

    @replies
    async def give_feedback(
        self, execution_id: str, feedback: dict[str, Any], by: str, actor: str, may_write: bool
    ) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return await self.quality.give(execution_id, feedback, by, actor, may_write)

    @replies
    async def judge_execution(self, execution_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Judge an ended execution now (whatever its sample), recording the verdict on it."""
        (await self._load()).require_tenant()
        return await self.quality.judge(execution_id, spec)

    @replies
    async def set_judge(self, judge: dict[str, Any] | None, by: str) -> dict[str, Any]:
        return await (await self._load()).set_judge(judge, by)

    @replies
    async def get_judge(self) -> dict[str, Any]:
        return (await self._load()).judge()

    # Replay experiments (`actors.experiments`)

    @replies
    async def start_experiment(
        self, body: dict[str, Any], sources: list[str], by: str
    ) -> dict[str, Any]:
        """Start replaying `sources` (execution ids, chosen from history) on the variants."""
        tenant = (await self._load()).require_tenant()
        experiment = await self.experiments.start(tenant, body, sources, by)
        return experiment_state(experiment)

    @replies
    async def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return experiment_state(await self.experiments.get(experiment_id))

    @replies
    async def list_experiments(self) -> list[dict[str, Any]]:
        """Newest first: each one's state without its runs."""
        tenant = (await self._load()).require_tenant()
        out = []
        for experiment_id in reversed(getattr(tenant, "experiment_ids", [])[-100:]):
            state = experiment_state(await self.experiments.get(experiment_id))
            out.append({**state, "runs": len(state["runs"])})
        return out

    @replies
    async def experiment_progress(self, experiment_id: str, after: int) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return await self.experiments.progress(experiment_id, after)

    @replies
    async def cancel_experiment(self, experiment_id: str) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return experiment_state(await self.experiments.cancel(experiment_id))

    # Collaborations (`actors.collaborations`)

    async def _step(self, plan: RunPlan, execution_id: str, live: LiveStream) -> None:
        """One collaboration step's execution, streamed into `live`, admitted like any
        execution (it waits for a free slot instead of being refused)."""
        bind_execution(self.tenant_id, execution_id)
        while True:
            try:
                reserved = self.gate.admit(time.monotonic(), plan.estimated_tokens)
                break
            except RateLimited as err:
                await asyncio.sleep(min(max(err.retry_after or 1.0, 0.05), 5.0))
        used = None
        try:
            await self.runner.execute_stream(plan, execution_id, live)
            used = (live.usage or {}).get("total_tokens")
        finally:
            self.gate.settle(time.monotonic(), reserved, used)
            self._settle_budget(execution_id)
            self.last_used = time.monotonic()

    @replies
    async def create_collaboration(self, body: dict[str, Any], by: str) -> dict[str, Any]:
        tenant = (await self._load()).require_tenant()
        return (await self.collaborations.create(tenant, body, by)).as_api()

    @replies
    async def list_collaborations(self) -> list[dict[str, Any]]:
        tenant = (await self._load()).require_tenant()
        found = [await self.collaborations.definition(i) for i in tenant.collaboration_ids]
        return [c.as_api() for c in found]

    @replies
    async def get_collaboration(self, collaboration_id: str) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return (await self.collaborations.definition(collaboration_id)).as_api()

    @replies
    async def update_collaboration(
        self, collaboration_id: str, changes: dict[str, Any], by: str
    ) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return (await self.collaborations.update(collaboration_id, changes, by)).as_api()

    @replies
    async def delete_collaboration(self, collaboration_id: str, by: str) -> dict[str, Any]:
        tenant = (await self._load()).require_tenant()
        await self.collaborations.delete(tenant, collaboration_id, by)
        return {"id": collaboration_id, "deleted": True}

    @replies
    async def run_collaboration(
        self,
        run_id: str,
        collaboration_id: str | None,
        definition: dict[str, Any] | None,
        inputs: dict[str, Any],
        by: str,
    ) -> dict[str, Any]:
        """Start run `run_id` of a saved collaboration (or of `definition`, inline); its
        state as it started. Repeating it returns the same run."""
        tenant = (await self._load()).require_tenant()
        saved = None
        if collaboration_id is not None:
            saved = await self.collaborations.definition(collaboration_id)
            definition = saved.definition
        spec = checked_collaboration(definition or {})
        run = await self.collaborations.start(tenant, spec, inputs, saved, by, run_id)
        return run_state(run)

    @replies
    async def wait_collaboration_run(self, run_id: str) -> dict[str, Any]:
        """The run's state once it has ended."""
        (await self._load()).require_tenant()
        return run_state(await self.collaborations.wait(run_id))

    @replies
    async def get_collaboration_run(self, run_id: str) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return run_state(await self.collaborations.get(run_id))

    @replies
    async def collaboration_run_events(self, run_id: str, after: int) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return await self.collaborations.events(run_id, after)

    @replies
    async def cancel_collaboration_run(self, run_id: str) -> dict[str, Any]:
        (await self._load()).require_tenant()
        return run_state(await self.collaborations.cancel(run_id))

    @replies
    async def ping(self) -> str:
        return self.tenant_id

    async def worker(self) -> dict[str, Any]:
        """This actor's process: its pid, when it was created, when its code was imported
        (before the actor was asked for when it took a spare worker) and its state loaded."""
        return {
            "pid": os.getpid(),
            "created_at": self.created_at,
            "loaded_at": self.loaded_at,
            "preloaded_at": spare_workers.preloaded_at,
        }


def handle(settings: Settings, tenant_id: str) -> Any:
    """The tenant's actor, started (and its state loaded on first use) if none runs."""
    return names.get_or_create(
        names.tenant_actor_name(settings, tenant_id),
        TenantActor,
        settings,
        tenant_id,
        placement=tenant_options(settings),
        runtime_env=spare_workers.actor_runtime_env(),
        # only with spares: telling a start apart costs a name lookup on each handle miss
        started=spare_workers.spares(settings.spare_workers, settings.tenant_resource).started
        if settings.spare_workers
        else None,
    )


def _peers(settings: Settings) -> Peers:
    """The tenant's execution loop's peers: this deployment's actors, found by name; a
    provider actor that died is started again by the next call that finds it dead."""
    providers: dict[str, names.Revivable] = {}

    def provider(name: str) -> names.Revivable:
        if name not in providers:
            providers[name] = names.Revivable(
                names.provider_actor_name(settings, name),
                lambda: provider_actor.handle(settings, name),
            )
        return providers[name]

    return Peers(
        config_actor=lambda: config_actor.handle(settings),
        provider=provider,
        projection=lambda: projection_actor.handle(settings),
        http=shared_client,
    )


REPLAYED = {"Idempotent-Replayed": "true"}
ATTEMPT_HEADER = "x-cb-attempt"  # on the answer of an execution run again after an interruption


async def _first_or_stored(
    target: str,
    fresh: bool,
    work: Callable[[str], Awaitable[Any]],
    stored: Callable[[str], Awaitable[Any | None]],
) -> Any:
    """A keyed request's work: what the first left, if it left anything, else the work."""
    if not fresh:
        found = await stored(target)
        if found is not None:
            return found
    return await work(target)


async def _ended() -> None:
    """The work of a stream that ended before it began (its error event is in the stream)."""


def _log_failed_save(saved: asyncio.Future[None]) -> None:
    if not saved.cancelled() and saved.exception() is not None:
        log.error("recording budget thresholds crossed failed: %r", saved.exception())


def _terminal(execution: Execution) -> tuple[str, Any] | None:
    if execution.status == "running":
        return None
    return stream_log.terminal_event(execution.status, execution.result, str(execution.id))
