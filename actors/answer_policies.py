"""What the execution runner applies around an answer: the response cache (plan, lookup,
write) and the guardrails' output side (whole answers, streams, the JSON-schema repair), and
the record of every guardrail check that fired."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import metrics
from actors.live_stream import LiveStream
from actors.model_calls import CallOutcome, ModelCaller
from actors.response_cache import ResponseCache, answer_of
from domain.config import Config
from domain.execution import Execution
from domain.guardrails import Decision, StreamGuard, blocked_error, repair_prompt, screen_output
from domain.llm import ChatMessage, LLMResponse
from domain.response_cache import CachePlan, Hit, chosen, plan_for
from domain.results import Outcome
from domain.run_guards import Screened
from domain.run_plan import RunPlan
from domain.tenant_models import TenantModelPolicy
from domain.tool_specs import ToolSpec


def cache_plan(
    tenant_id: str,
    policy: TenantModelPolicy,
    plan: RunPlan,
    model: str,
    screened: Screened,
    specs: list[ToolSpec],
    parameters: dict[str, Any],
) -> CachePlan | None:
    """How the execution uses the response cache, or None (not asked)."""
    settings = chosen(plan.cache, plan.agent_cache, policy.cache, parameters.get("temperature"))
    if settings is None:
        return None
    definitions = [spec.definition() for spec in specs] + plan.client_tools
    return plan_for(
        settings, tenant_id, model, plan.agent_id, plan.agent_version, screened.messages,
        definitions, parameters,
    )  # fmt: skip


def note_guardrails(
    execution: Execution, outcome: Outcome, stage: str, decisions: list[Decision]
) -> None:
    """Record the checks that fired: an event, the outcome's list, the metrics."""
    if not decisions:
        return
    shown = [d.as_event() for d in decisions]
    execution.apply_guardrails(stage, shown)
    outcome.guardrails = [*(outcome.guardrails or []), *shown]
    for d in decisions:
        metrics.RECORDER.inc(
            "cb_guardrail_decisions_total", (stage, d.check, d.action), tenant=execution.tenant_id
        )


async def lookup(
    cache: ResponseCache, plan: CachePlan, config: Config, own_keys: dict[str, str],
    outcome: Outcome,
) -> tuple[Hit | None, list[float] | None]:  # fmt: skip
    """The cached answer for a plan, noted in `outcome` (a hit, or `cache_hit: false`); and
    the prompt's vector when a semantic lookup made one."""
    hit, vector = await cache.lookup(plan, config, own_keys)
    outcome.cache_hit = False
    if hit is None or hit.answer.model not in config.models:
        return None, vector
    outcome.cache_hit, outcome.cost_saved_usd = True, hit.answer.cost_usd
    outcome.cached_from, outcome.cache_similarity = hit.answer.execution_id, hit.similarity
    metrics.RECORDER.inc("cb_cache_saved_usd_total", (), hit.answer.cost_usd, cache.tenant_id)
    return hit, vector


def hit_outcome(hit: Hit) -> CallOutcome:
    """A cache hit as the outcome of a call that made no attempt and counted no tokens."""
    answer = hit.answer
    return CallOutcome(model=answer.model, provider=answer.provider, response=answer.response())


def remember(
    cache: ResponseCache,
    plan: CachePlan,
    vector: list[float] | None,
    execution: Execution,
    outcome: Outcome,
    raw: LLMResponse,
) -> None:
    """Keep a fresh completed answer (the model's raw text) in the cache, unawaited; one
    that used server-side tools is not kept (their results may change)."""
    if outcome.cache_hit or execution.status != "completed" or execution.tool_calls:
        return
    answer = answer_of(raw.content, raw.tool_calls, raw.finish_reason, outcome, str(execution.id))
    asyncio.get_running_loop().create_task(cache.remember(plan, answer, vector))


async def repair_if_asked(
    caller: ModelCaller,
    screened: Screened,
    total: CallOutcome,
    messages: list[ChatMessage],
    chain: list[str],
    parameters: dict[str, Any],
    tools: list[dict[str, Any]] | None,
) -> None:
    """An answer that fails a `json_schema` output check with `repair` is asked for once
    more, with what was wrong; the second answer is checked as any answer is."""
    schemas = [c for c in screened.output if c.type == "json_schema"]
    if not schemas or total.response is None:
        return
    first = screen_output(total.response.content or "", schemas, {})
    if first.schema_error is None or first.repair_schema is None:
        return
    asked = [
        *messages,
        ChatMessage(role="assistant", content=total.response.content),
        ChatMessage(role="user", content=repair_prompt(first.repair_schema, first.schema_error)),
    ]
    model = total.model
    again = await caller.complete(
        [model, *(m for m in chain if m != model)] if model else chain, asked, parameters, tools
    )
    total.absorb(again)
    assert again.response is not None
    usage = total.response.usage.plus(again.response.usage)
    total.response = again.response.model_copy(update={"usage": usage})


def guard_answer(
    screened: Screened, execution: Execution, outcome: Outcome, total: CallOutcome
) -> None:
    """The output checks on a whole answer: redact, restore placeholders, or block."""
    if not screened.guards_output or total.response is None:
        return
    verdict = screen_output(total.response.content or "", screened.output, screened.placeholders)
    note_guardrails(execution, outcome, "output", verdict.decisions)
    if verdict.blocked is not None:
        raise blocked_error(verdict.blocked)
    total.response = total.response.model_copy(update={"content": verdict.text})


def finish_guard(
    guard: StreamGuard, execution: Execution, outcome: Outcome, live: LiveStream
) -> None:
    """A stream's end: what the guard still held, the checks that fired, or the block."""
    rest = guard.finish()
    note_guardrails(execution, outcome, "output", guard.decisions)
    if guard.blocked is not None:
        raise blocked_error(guard.blocked)
    if rest:
        live.emit("content_chunk", {"execution_id": live.execution_id, "delta": rest})
