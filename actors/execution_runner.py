"""The execution loop inside a tenant actor: record, resolve, call, account, record."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, NoReturn

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import PersistenceError

from actors import answer_policies, metrics, tracing
from actors.event_store import AsyncEventStore
from actors.interrupted_runs import InterruptedRuns, interruption
from actors.live_stream import LiveStream
from actors.model_calls import CallOutcome, ModelCaller
from actors.payload_keys import NO_SUBJECT
from actors.peers import Peers
from actors.replies import unwrap
from actors.response_cache import ResponseCache
from actors.routing_view import RoutingView
from actors.settings import configured_endpoints
from actors.tool_box import ToolBox, replayed
from actors.unrecorded_ends import EndNotRecorded, UnrecordedEnds
from domain import shredding
from domain.budgets import BudgetLedger, Crossing, Reservation, scopes_of, worst_cost
from domain.codecs.tool_calls import arguments as tool_arguments
from domain.codecs.tool_calls import assemble
from domain.config import Config, parse_config
from domain.errors import (
    ERROR_TYPES,
    BudgetExceeded,
    CBError,
    Conflict,
    ModelNotFound,
    NotFound,
    ToolIterationLimit,
    category_of,
)
from domain.execution import Execution
from domain.guardrails import StreamGuard, blocked_error
from domain.llm import (
    ChatMessage,
    LLMResponse,
    Usage,
    estimate_prompt_tokens,
    estimate_tokens,
)
from domain.pricing import cost_usd
from domain.response_cache import CachePlan, Hit
from domain.results import Answer, Attempt, ErrorInfo, Outcome, Timings
from domain.routing import NO_NEEDS, Needs, Route, resolve
from domain.run_guards import Screened, pieces, screen, screen_tool_results, tool_call_deltas
from domain.run_plan import RunPlan
from domain.stream_log import terminal_event
from domain.tenant_models import TenantModelPolicy
from domain.tool_specs import MAX_ITERATIONS, ToolSpec
from domain.trace_context import TRACE_ID

log = logging.getLogger(__name__)


class ExecutionRunner:
    """Runs a tenant's executions. Writes to the store: Started+ModelResolved before the
    first call, each tool turn's calls and results, a streamed execution's checkpoints, and
    the terminal event with the `Outcome`."""

    def __init__(
        self, config: Config, store: AsyncEventStore, tenant_id: str, peers: Peers
    ) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.peers = peers
        self.policy = TenantModelPolicy()
        self.routing = RoutingView(
            peers.config_actor, peers.provider, lambda: self.caller.endpoint_keys, self.use_config
        )
        self.caller = ModelCaller(config, self.routing, peers.provider, peers.http)
        self.caller.tenant_id = tenant_id
        self.tools = ToolBox()
        self.budgets = BudgetLedger()
        # execution id → what it holds in the budgets, and the outcome that will say its cost
        self.budget_holds: dict[str, tuple[Reservation, Outcome]] = {}
        self.cache: ResponseCache | None = None  # set by the tenant actor
        self.payload_days: int | None = None  # the tenant's payload retention, if it has one
        self.unrecorded = UnrecordedEnds(store, self.stored)
        self.interrupted = InterruptedRuns(store, self.stored)
        self.write_timeout_s = 5.0  # the tenant actor sets the operator's
        self._adopt_config(config)

    def use_config(self, data: dict[str, Any]) -> None:
        """Adopt a new effective configuration (from the config actor)."""
        self._adopt_config(parse_config(data))

    def _adopt_config(self, config: Config) -> None:
        self.config = config
        self.caller.config = config
        self._count_providers()

    def use_own_keys(self, keys: dict[str, str]) -> None:
        """The tenant's own provider keys: used for its calls, and they configure a provider
        the platform has no key for."""
        self.caller.own_keys = keys
        self._count_providers()

    def _count_providers(self) -> None:
        endpoints = configured_endpoints(self.config, self.caller.own_keys)
        self.providers = {e.provider for e in endpoints}
        self.caller.use_endpoints(endpoints)

    async def check_model(self, model: str, tools: list[str] | None = None) -> None:
        """Reject an agent whose model resolves to nothing in the config, or to no model
        that takes its tools."""
        needs = Needs(capabilities=frozenset({"tools"})) if tools else Needs()
        await self.route(model, needs, any_provider=True)

    async def route(self, model: str, needs: Needs = NO_NEEDS, any_provider: bool = False) -> Route:
        """Resolve `model` for this tenant against the configuration and health of now.

        A name it does not know sends it to the config actor once before it says so: the
        name may have been added a moment ago.
        """
        await self.routing.fresh()
        try:
            return self._resolve(model, needs, any_provider)
        except ModelNotFound:
            await self.routing.refresh()
            return self._resolve(model, needs, any_provider)

    def _resolve(self, model: str, needs: Needs, any_provider: bool) -> Route:
        return resolve(
            model,
            self.config,
            self.config.providers.keys() if any_provider else self.providers,
            () if any_provider else self.routing.open,
            needs,
            self.routing.stats,
            virtual_models=self.policy.virtual_models(self.config),
            allowed_models=self.policy.allowed_models,
        )

    async def fail_interrupted(self) -> int:
        """Settle the executions a previous incarnation of this actor left running (see
        `actors.interrupted_runs`); how many were failed at once."""
        running = unwrap(
            await self.peers.projection().list_executions.remote(
                self.tenant_id, {"status": "running", "limit": 500}
            )
        )
        return await self.interrupted.settle([row["execution_id"] for row in running])

    async def recorded_stream(self, execution_id: str) -> Execution:
        """A streamed execution of this tenant as the store has it."""
        execution = await self.stored(execution_id)
        if not isinstance(execution, Execution) or execution.tenant_id != self.tenant_id:
            raise NotFound(f"execution {execution_id} not found")
        if not execution.stream:
            raise Conflict(
                f"execution {execution_id} was not streamed; GET /api/v1/executions/"
                f"{execution_id} has its result"
            )
        return execution

    async def stored(self, execution_id: str) -> Execution | None:
        """The execution as the store has it, or None (no such aggregate, or not an id)."""
        try:
            return await self.store.run(self.store.app.repository.get, uuid.UUID(execution_id))
        except (AggregateNotFoundError, ValueError):
            return None

    async def begin(
        self,
        plan: RunPlan,
        execution_id: str,
        stream: bool,
        live: LiveStream | None = None,
        restart: Execution | None = None,
    ) -> Run:
        """Record the start (or, with `restart`, a claimed interrupted execution's new
        attempt: `actors.interrupted_runs`) and the routing decision durably; routing failures
        end it here (recorded, emitted into `live` if given, and raised). The execution's span
        starts here (`actors.tracing`); its loop (`execute`, `stream`) ends it."""
        span = tracing.start_execution(
            plan.traceparent, self.tenant_id, execution_id, plan.kind, plan.agent_id,
            plan.model, stream,
        )  # fmt: skip
        try:
            run = await self._begin(plan, execution_id, stream, live, span, restart)
        except BaseException as exc:
            tracing.end(span, exc)
            raise
        finally:
            self.interrupted.release(execution_id)
        run.span, run.traceparent = span, plan.traceparent
        return run

    async def _begin(
        self,
        plan: RunPlan,
        execution_id: str,
        stream: bool,
        live: LiveStream | None,
        span: Any,
        restart: Execution | None,
    ) -> Run:
        started = time.perf_counter()
        trace_id = tracing.trace_id_hex(span, plan.traceparent)
        TRACE_ID.set(trace_id)  # for this task's log lines
        if restart is not None:
            execution = restart
            execution.restart_attempt(interruption(execution_id).to_dict())
        else:
            execution = await self._started(plan, execution_id, stream, trace_id)
        if log.isEnabledFor(logging.DEBUG):  # the messages only with CB_LOG_PROMPTS=1
            messages = [m.model_dump(exclude_none=True) for m in plan.messages]
            log.debug("execution started", extra={"model": plan.model, "messages": messages})
        outcome = Outcome(request_metadata=plan.metadata, trace_id=trace_id)
        parameters, capped = self.policy.parameters(plan.parameters)
        if capped:
            outcome.capped_parameters = capped
        try:
            screened = screen(
                plan.messages, plan.agent_system, self.policy.guardrails, plan.agent_guardrails
            )
            answer_policies.note_guardrails(execution, outcome, "input", screened.decisions)
            if screened.blocked is not None:
                raise blocked_error(screened.blocked)
            tools = plan.server_tools
            needs = Needs(
                capabilities=frozenset(
                    (["tools"] if tools or plan.client_tools else [])
                    + (["streaming"] if stream else [])
                ),
                prompt_tokens=estimate_prompt_tokens(plan.messages),
                max_tokens=parameters.get("max_tokens"),
            )
            specs = await self.tools.resolve(tools)
            route = await self.route(plan.model, needs)
        except CBError as err:
            await self._fail(execution, outcome, err, started, live)
        self._hold_budget(plan, execution, outcome, route, needs)  # a refusal records nothing
        first = route.chain[0]
        outcome.routing = route.explain()
        execution.resolve_model(first, self.config.models[first].provider, outcome.routing)
        # flushed before a stream's client hears of it; a whole execution's start only
        # crash-safe, flushed by its end's save before its client hears anything
        await self._durably(execution, outcome, execution.collect_events(), synced=stream)
        return Run(
            execution=execution,
            outcome=outcome,
            route=route,
            messages=screened.messages,
            parameters=parameters,
            started=started,
            start_write_ms=_ms_since(started),
            tools={spec.name: spec for spec in specs},
            recorded=None if plan.recorded_tools is None else list(plan.recorded_tools),
            client_tools=plan.client_tools,
            screened=screened,
            cache=answer_policies.cache_plan(
                self.tenant_id, self.policy, plan, first, screened, specs, parameters
            )
            if self.cache is not None
            else None,
        )

    async def _started(
        self, plan: RunPlan, execution_id: str, stream: bool, trace_id: str | None
    ) -> Execution:
        """A new execution, its `Started` event pending."""
        ref = plan.subject_ref
        if plan.subject:
            ref = shredding.subject_ref(self.tenant_id, plan.subject)
        return Execution(
            id=uuid.UUID(execution_id),
            tenant_id=self.tenant_id,
            agent_id=plan.agent_id,
            agent_version=plan.agent_version,
            request=plan.request,
            model_requested=plan.model,
            stream=stream,
            kind=plan.kind,
            trace_id=trace_id,
            subject_ref=ref,
            payload_kid=await self._payload_kid(ref),
            caller=plan.caller,
        )

    async def _payload_kid(self, subject_ref: str | None) -> str | None:
        """The key to seal the execution's payload under: one per data subject and hour,
        or per hour for a tenant that keeps payloads for a while only; else none."""
        if subject_ref is None and self.payload_days is None:
            return None
        keys = self.store.payload_keys
        at = shredding.bucket(time.time())
        ref = subject_ref or NO_SUBJECT
        return keys.known(self.tenant_id, ref, at) or await self.store.run(
            keys.kid_for, self.tenant_id, ref, at
        )

    def budget_refuses(self, plan: RunPlan) -> bool:
        """Whether a hard budget may refuse the plan (it must be routed before any reply)."""
        return self.budgets.refuses(scopes_of(plan.agent_id))

    def _hold_budget(
        self, plan: RunPlan, execution: Execution, outcome: Outcome, route: Route, needs: Needs
    ) -> None:
        """Hold the execution's worst-case cost (the dearest model of its chain, its prompt
        estimate and `max_tokens`) in its budgets, as of its start; BudgetExceeded over a
        hard one."""
        scopes = scopes_of(plan.agent_id)
        if not self.budgets.covers(scopes):
            return
        worst = max(
            worst_cost(self.config.models[m], needs.prompt_tokens, needs.max_tokens)
            for m in route.chain
        )
        held = self.budgets.admit(scopes, worst, execution.created_on.timestamp())
        self.budget_holds[str(execution.id)] = (held, outcome)

    def settle_budget(self, execution_id: str) -> list[Crossing]:
        """The execution ended: its budgets are charged its recorded cost (0 if it failed
        before a provider answered); the thresholds that newly crossed."""
        held = self.budget_holds.pop(execution_id, None)
        if held is None:
            return []
        reservation, outcome = held
        return self.budgets.settle(reservation, outcome.cost_usd, time.time())

    async def execute(
        self, plan: RunPlan, execution_id: str, restart: Execution | None = None
    ) -> dict[str, Any]:
        """Run one execution (or `restart`'s new attempt) to its end; its result (a failure
        raises, recorded). Cancelled (its caller went away), it is recorded as cancelled."""
        run = await self.begin(plan, execution_id, stream=False, restart=restart)
        with tracing.running(run.span, run.execution, run.traceparent):
            return await self._whole(run)

    async def _whole(self, run: Run) -> dict[str, Any]:
        """`execute`'s loop: the cache, else model turns and tool calls until an answer."""
        total = CallOutcome()
        messages, chain, usage = list(run.messages), list(run.route.chain), Usage()
        try:
            hit = await self._lookup(run)
            if hit is not None:
                total = answer_policies.hit_outcome(hit)
                answer_policies.guard_answer(run.screened, run.execution, run.outcome, total)
                return await self._complete(run, total)
            for turn in range(1, MAX_ITERATIONS + 1):
                outcome = await self.caller.complete(
                    chain, messages, run.parameters, run.definitions()
                )
                total.absorb(outcome)
                assert outcome.response is not None
                usage = usage.plus(outcome.response.usage)
                calls = outcome.response.tool_calls if run.tools else []
                if not calls:
                    total.response = outcome.response.model_copy(update={"usage": usage})
                    await answer_policies.repair_if_asked(
                        self.caller, run.screened, total, messages, chain, run.parameters,
                        run.definitions(),
                    )  # fmt: skip
                    raw = total.response
                    answer_policies.guard_answer(run.screened, run.execution, run.outcome, total)
                    result = await self._complete(run, total)
                    self._remember(run, raw)
                    return result
                chain = _sticking_to(outcome.model, chain)
                await self._use_tools(run, messages, outcome.response.content, calls, turn)
            raise _iteration_limit()
        except EndNotRecorded:
            raise
        except Exception as exc:
            err = _as_cb_error(exc, run)
            err.details = _with_attempts(err, total)
            await self._fail_after_attempts(run, err)
        except asyncio.CancelledError:
            run.outcome.attempts = total.attempts
            await asyncio.shield(self._cancel(run, None))
            raise

    async def execute_stream(
        self, plan: RunPlan, execution_id: str, live: LiveStream, restart: Execution | None = None
    ) -> None:
        """Begin (a failure ends the stream with its error event), then `stream`."""
        try:
            run = await self.begin(plan, execution_id, stream=True, live=live, restart=restart)
        except (BudgetExceeded, EndNotRecorded) as err:
            # not recorded (yet: the store refused the start): said in the stream, then it ends
            live.emit("error", err.to_dict())
            return
        except CBError:
            return  # recorded, and emitted as the terminal event
        await self.stream(run, live)

    async def stream(self, run: Run, live: LiveStream) -> None:
        """Like `execute`, emitting each step into `live` as it happens; ends with a terminal
        event. A client tool's call is emitted as `tool_call_delta` events as it streams.

        Every `live.checkpoint_s` the events sent so far are checkpointed into the store, with
        an estimate of the usage so far, so the stream can be resumed from the store.
        """
        with tracing.running(run.span, run.execution, run.traceparent):
            await self._stream(run, live)

    async def _stream(self, run: Run, live: LiveStream) -> None:
        execution_id = live.execution_id
        live.emit(
            "execution_start",
            {
                "execution_id": execution_id,
                "agent_id": run.execution.agent_id,
                "model_requested": run.execution.model_requested,
                "model_resolved": run.route.chain[0],
                "provider": self.config.models[run.route.chain[0]].provider,
            },
        )
        total = CallOutcome()
        messages, chain = list(run.messages), list(run.route.chain)
        usage: Usage | None = None
        finish: str | None = None
        client_calls: list[dict[str, Any]] = []
        guarded = run.screened.guards_output
        guard = StreamGuard(run.screened.output, run.screened.placeholders) if guarded else None
        text = ""
        try:
            hit = await self._lookup(run)
            if hit is not None:
                await self._stream_hit(run, hit, live)
                return
            for turn in range(1, MAX_ITERATIONS + 1):
                outcome, turn_usage, deltas, text = CallOutcome(), None, [], ""
                async for chunk in self.caller.stream(
                    chain, messages, run.parameters, outcome, run.definitions()
                ):
                    if chunk.delta:
                        if run.outcome.ttft_ms is None:
                            run.outcome.ttft_ms = _ms_since(run.started)
                        text += chunk.delta
                        shown = chunk.delta
                        if guard is not None:
                            shown = guard.feed(chunk.delta)
                            if guard.blocked is not None:
                                raise blocked_error(guard.blocked)
                        if shown:
                            first = not live.content
                            live.emit(
                                "content_chunk", {"execution_id": execution_id, "delta": shown}
                            )
                            if first:  # sent now, not after the chunks already read behind it
                                await asyncio.sleep(0)
                    deltas.extend(chunk.tool_call_deltas)
                    if run.client_tools:
                        for delta in chunk.tool_call_deltas:
                            live.emit(
                                "tool_call_delta", {"execution_id": execution_id, "delta": delta}
                            )
                    if chunk.usage is not None:
                        turn_usage = (
                            chunk.usage if turn_usage is None else turn_usage.merged(chunk.usage)
                        )
                        shown = turn_usage if usage is None else usage.plus(turn_usage)
                        live.emit("usage_update", self._usage_event(execution_id, outcome, shown))
                    finish = chunk.finish_reason or finish
                    if live.checkpoint_due():
                        self._checkpoint(run, outcome, live)
                total.absorb(outcome)
                if turn_usage is not None:
                    usage = turn_usage if usage is None else usage.plus(turn_usage)
                assembled = assemble(deltas) if deltas else []
                if run.client_tools:
                    client_calls = assembled
                calls = assembled if run.tools else []
                if not calls:
                    break
                chain = _sticking_to(outcome.model, chain)
                await self._use_tools(run, messages, text, calls, turn, live)
            else:
                raise _iteration_limit()
            if guard is not None:
                answer_policies.finish_guard(guard, run.execution, run.outcome, live)
        except EndNotRecorded as unrecorded:
            live.emit("error", unrecorded.to_dict())
            return
        except Exception as exc:
            err = _as_cb_error(exc, run)
            run.outcome.answer = Answer(content=live.text)
            err.details = _with_attempts(err, total)
            try:
                await self._fail_after_attempts(run, err, live)
            except CBError:
                return
        except asyncio.CancelledError:
            run.outcome.attempts = total.attempts
            await asyncio.shield(self._cancel(run, live))
            raise
        if usage is None:  # the provider counted nothing (the bundled local model): estimate
            usage = self._estimate(run, live.text)
            live.emit("usage_update", self._usage_event(execution_id, total, usage))
        total.response = LLMResponse(
            content=live.text, tool_calls=client_calls, finish_reason=finish, usage=usage
        )
        try:
            result = await self._complete(run, total, live)
        except EndNotRecorded as unrecorded:
            live.emit("error", unrecorded.to_dict())
            return
        live.emit("execution_complete", result)
        self._remember(run, total.response.model_copy(update={"content": text}))

    async def _lookup(self, run: Run) -> Hit | None:
        """The cached answer for the run, if its plan asks the cache and it has one."""
        if run.cache is None or self.cache is None:
            return None
        hit, run.cache_vector = await answer_policies.lookup(
            self.cache, run.cache, self.config, self.caller.own_keys, run.outcome
        )
        return hit

    def _remember(self, run: Run, raw: LLMResponse) -> None:
        """Cache the answer, unless it is a data subject's (a copy outside its key)."""
        if run.execution.subject_ref is not None:
            return
        if run.cache is not None and self.payload_days is not None:  # kept no longer
            ttl = min(run.cache.settings.ttl_s, self.payload_days * 86400.0)
            settings = run.cache.settings.model_copy(update={"ttl_s": ttl})
            run.cache = replace(run.cache, settings=settings)
        if run.cache is not None and self.cache is not None:
            answer_policies.remember(
                self.cache, run.cache, run.cache_vector, run.execution, run.outcome, raw
            )

    async def _stream_hit(self, run: Run, hit: Hit, live: LiveStream) -> None:
        """A cache hit, streamed as a fresh answer would be: content in chunks, the client
        tool calls, usage (none counted), the end."""
        total = answer_policies.hit_outcome(hit)
        answer_policies.guard_answer(run.screened, run.execution, run.outcome, total)
        assert total.response is not None
        for piece in pieces(total.response.content):
            live.emit("content_chunk", {"execution_id": live.execution_id, "delta": piece})
        if run.client_tools:
            for delta in tool_call_deltas(total.response.tool_calls):
                live.emit("tool_call_delta", {"execution_id": live.execution_id, "delta": delta})
        live.emit("usage_update", self._usage_event(live.execution_id, total, Usage()))
        live.emit("execution_complete", await self._complete(run, total, live))

    async def _use_tools(
        self,
        run: Run,
        messages: list[ChatMessage],
        content: str | None,
        calls: list[dict[str, Any]],
        turn: int,
        live: LiveStream | None = None,
    ) -> None:
        """Run one turn's tool calls concurrently; record, emit and answer each."""
        messages.append(ChatMessage(role="assistant", content=content or None, tool_calls=calls))
        execution_id = str(run.execution.id)
        for call in calls:
            fn = call["function"]
            run.execution.call_tool(call["id"], fn["name"], tool_arguments(fn), turn)
            if live is not None:
                live.emit("tool_call", {"execution_id": execution_id, "turn": turn, **call})
        if run.recorded is None:
            outcomes = await asyncio.gather(*(self.tools.run(c, run.tools) for c in calls))
        else:  # a replay: the recorded answers, no tool is called
            outcomes = [replayed(c, run.recorded) for c in calls]
        for outcome in outcomes:
            run.execution.record_tool_result(
                outcome.call_id, outcome.name, outcome.result, outcome.error, outcome.duration_ms
            )
            run.tool_results.append(outcome.as_api())
            if live is not None:
                live.emit("tool_result", {"execution_id": execution_id, **outcome.as_api()})
        # what goes back to the model passes the input checks, as the caller's text did
        contents, fired = screen_tool_results(run.screened, [o.content() for o in outcomes])
        answer_policies.note_guardrails(run.execution, run.outcome, "input", fired)
        for outcome, text in zip(outcomes, contents, strict=True):
            messages.append(
                ChatMessage(role="tool", tool_call_id=outcome.call_id, name=outcome.name,
                            content=text)
            )  # fmt: skip
        await self.store.save_events(run.execution.collect_events(), synced=False)

    def _checkpoint(self, run: Run, outcome: CallOutcome, live: LiveStream) -> None:
        """Tell the client the usage so far (estimated) and checkpoint the stream, unawaited."""
        usage = self._usage_event(live.execution_id, outcome, self._estimate(run, live.text))
        live.emit("usage_update", usage)
        run.execution.checkpoint(live.take_unrecorded(), usage)
        events = run.execution.collect_events()
        live.saving(events, self.store.save_events(events, synced=False))

    @staticmethod
    def _estimate(run: Run, text: str) -> Usage:
        return Usage.of(estimate_prompt_tokens(run.messages), estimate_tokens(text), estimated=True)

    def _usage_event(self, execution_id: str, outcome: CallOutcome, usage: Usage) -> dict[str, Any]:
        model = self.config.models.get(outcome.model or "")
        cost = (
            cost_usd(model, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
            if model
            else 0.0
        )
        return {
            "execution_id": execution_id,
            **usage.model_dump(),
            "cost_usd": cost,
        }

    async def _complete(
        self, run: Run, outcome: CallOutcome, live: LiveStream | None = None
    ) -> dict[str, Any]:
        """Record the completion; the result document, which alone says how long its own
        recording took."""
        self._fill(run, outcome)
        run.execution.complete(run.outcome, live.take_unrecorded() if live else None)
        finishing = time.perf_counter()
        await self._save_end(run.execution, live)
        result = run.execution.result
        result["metadata"]["timings_ms"]["finish_write"] = _ms_since(finishing)
        return result

    async def _save_end(self, execution: Execution, live: LiveStream | None) -> None:
        """Save a terminal event, after any checkpoint whose own save failed. If the store
        refuses it or holds it too long (`_durably`), `EndNotRecorded` is raised: the client
        is not told an outcome the store may not hold."""
        retry = await self._failed_checkpoints(execution, live) if live else []
        await self._durably(execution, execution.outcome, retry + execution.collect_events())
        out = execution.outcome
        metrics.execution_ended(
            self.tenant_id, execution.kind, execution.status, (out.duration_ms or 0) / 1000,
            out.model_resolved or execution.model_resolved, out.cost_usd or 0.0,
        )  # fmt: skip
        _log_end(execution)

    async def _failed_checkpoints(self, execution: Execution, live: LiveStream) -> list[Any]:
        """The events of the stream's checkpoints whose save failed, to save again with its
        end; if their saves are still held (the store is down, its writes retrying) past
        `write_timeout_s`, `EndNotRecorded`, as for the end itself."""
        if not live.saving_checkpoints:
            return []
        settled = asyncio.ensure_future(live.failed_saves())
        try:
            return await asyncio.wait_for(asyncio.shield(settled), self.write_timeout_s)
        except TimeoutError:
            raise self.unrecorded.add(execution, execution.outcome, after=settled) from None

    async def _durably(
        self, execution: Execution, outcome: Outcome, events: list[Any], synced: bool = True
    ) -> None:
        """Save `events` of `execution` (`synced`: see `AsyncEventStore`); if the store refuses
        them, or holds them (it is down, its writes retrying) past `write_timeout_s`, raise
        `EndNotRecorded` (the client is answered 503) and keep the execution's end to record
        once the store is back."""
        saving = self.store.save_events(events, synced)
        try:
            await asyncio.wait_for(asyncio.shield(saving), self.write_timeout_s)
        except TimeoutError:
            raise self.unrecorded.add(execution, outcome, after=saving) from None
        except PersistenceError as exc:
            raise self.unrecorded.add(execution, outcome) from exc

    async def _fail_after_attempts(
        self, run: Run, err: CBError, live: LiveStream | None = None
    ) -> NoReturn:
        run.outcome.attempts = [
            Attempt.model_validate(a) for a in (err.details or {}).get("attempts", [])
        ]
        await self._fail(run.execution, run.outcome, err, run.started, live)

    async def _cancel(self, run: Run, live: LiveStream | None) -> None:
        """The client went away: record what was produced, as cancelled (unless it ended)."""
        if run.execution.status != "running":
            return
        run.outcome.answer = Answer(content=live.text if live else "")
        run.outcome.duration_ms = _ms_since(run.started)
        run.execution.cancel(run.outcome, live.take_unrecorded() if live else None)
        if live is not None:
            live.emit(*terminal_event("cancelled", run.execution.result, live.execution_id))
        with contextlib.suppress(EndNotRecorded):  # recorded once the store is back
            await self._save_end(run.execution, live)

    def _fill(self, run: Run, call: CallOutcome) -> None:
        """What the model answered, what it cost, and how it got there."""
        response, out = call.response, run.outcome
        assert response is not None and call.model is not None
        usage = response.usage
        out.answer = Answer(
            content=response.content,
            tool_calls=response.tool_calls,
            finish_reason=response.finish_reason,
            tool_results=run.tool_results,
        )
        out.usage = usage
        out.cost_usd = cost_usd(
            self.config.models[call.model],
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
        )
        out.model_resolved, out.provider = call.model, call.provider
        out.provider_model = response.provider_model
        out.attempts = call.attempts
        out.fallback_used = call.model != run.route.chain[0]
        out.dropped_parameters = call.dropped_parameters
        out.adjusted_parameters = call.adjusted_parameters
        out.duration_ms = _ms_since(run.started)
        out.timings = Timings.of(run.start_write_ms, call.attempts)
        if run.tools:
            out.tool_calls = run.execution.tool_calls
            out.tool_errors = run.execution.tool_errors
            out.tools_offered = sorted(run.tools)

    async def _fail(
        self,
        execution: Execution,
        outcome: Outcome,
        err: CBError,
        started: float,
        live: LiveStream | None = None,
    ) -> NoReturn:
        """Record the failure and raise. A stream's terminal `error` event (the same error)
        goes out once the failure is durable, as `execution_complete` does, so a client that
        saw it reads the execution as failed."""
        err.execution_id = execution_id = str(execution.id)
        outcome.error = ErrorInfo(type=err.type, message=err.message, execution_id=execution_id)
        outcome.duration_ms = _ms_since(started)
        execution.fail(outcome, live.take_unrecorded() if live else None)
        told = outcome.error.model_dump()
        try:
            await self._save_end(execution, live)
        except EndNotRecorded as unrecorded:  # the client is told its end is not recorded yet
            err, told = unrecorded, unrecorded.to_dict()
        finally:  # even if the save failed: the stream still ends with the error
            if live is not None:
                live.emit("error", told)
        raise err


@dataclass
class Run:
    """An execution whose start is durable, with everything needed to call the model."""

    execution: Execution
    outcome: Outcome
    route: Route
    messages: list[ChatMessage]
    parameters: dict[str, Any]
    started: float
    start_write_ms: float
    tools: dict[str, ToolSpec] = field(default_factory=dict)
    client_tools: list[dict[str, Any]] = field(default_factory=list)
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    span: Any = None  # the execution's span (`actors.tracing`), None when tracing is off
    traceparent: str | None = None  # the caller's, passed on when tracing is off
    screened: Screened = field(default_factory=lambda: Screened(messages=[]))
    cache: CachePlan | None = None
    cache_vector: list[float] | None = None  # the prompt's, when a semantic lookup made one
    recorded: list[dict[str, Any]] | None = None  # a replay's recorded tool calls (`replayed`)

    def definitions(self) -> list[dict[str, Any]] | None:
        """The tools the model is offered: the server's, then the client's."""
        return [t.definition() for t in self.tools.values()] + self.client_tools or None


def _log_end(execution: Execution) -> None:
    """One line per execution's end: status, model, time and cost, and a failure's type and
    category (warning when a provider is to blame, error when we are, debug otherwise: a
    line per execution costs the hot path); never its content."""
    out = execution.outcome
    category = category_of(ERROR_TYPES.get(out.error.type, CBError)) if out.error else "client"
    level = {"provider": logging.WARNING, "internal": logging.ERROR}.get(category, logging.DEBUG)
    if not log.isEnabledFor(level):
        return
    extra: dict[str, Any] = {
        "tenant_id": execution.tenant_id,
        "execution_id": str(execution.id),
        "trace_id": getattr(out, "trace_id", None),  # None: this task's, if any
        "status": execution.status,
        "kind": execution.kind,
        "model": out.model_resolved or execution.model_resolved,
        "provider": out.provider,
        "duration_ms": out.duration_ms,
        "cost_usd": out.cost_usd,
    }
    why = ""
    if out.error is not None:
        extra.update(error_type=out.error.type, error_category=category)
        why = f" ({out.error.type}, {category})"
    log.log(level, "execution %s %s%s", execution.id, execution.status, why, extra=extra)


def _as_cb_error(exc: Exception, run: Run) -> CBError:
    """What an execution's failure is recorded as: its own error, or for anything else (a bug,
    a peer lost in a way no retry covered) an `internal_error` whose cause stays in the log,
    so no execution is ever left running."""
    if isinstance(exc, CBError):
        return exc
    log.exception("execution %s failed unexpectedly", run.execution.id, exc_info=exc)
    return CBError("internal error")


def _with_attempts(err: CBError, total: CallOutcome) -> dict[str, Any]:
    """The error's details with every attempt of the execution, earlier turns first."""
    details = err.details if isinstance(err.details, dict) else {}
    earlier = [a.model_dump() for a in total.attempts]
    return {**details, "attempts": earlier + details.get("attempts", [])}


def _sticking_to(model: str | None, chain: list[str]) -> list[str]:
    """Later turns of a tool loop go to the model that answered, the rest as fallbacks."""
    return [model, *(m for m in chain if m != model)] if model else chain


def _iteration_limit() -> ToolIterationLimit:
    return ToolIterationLimit(
        f"the model was still calling tools after {MAX_ITERATIONS} turns",
        details={"max_iterations": MAX_ITERATIONS},
    )


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 3)
