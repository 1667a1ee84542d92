"""Feedback and judges of one tenant's executions, in its TenantActor.

Feedback is a `FeedbackGiven` event on the ended execution. A judge scores a completed
execution after its answer was sent: its call is a real execution of kind `judge` (routed,
limited, budgeted and costed like any other, its payload sealed under the judged
execution's subject), its verdict a `FeedbackGiven` from source `judge`, or, when the reply
is no verdict twice or the call fails, a `JudgeFailed`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from actors.execution_runner import ExecutionRunner
from actors.replies import WithHeaders
from domain.errors import CBError, Conflict, NotFound, PermissionDenied
from domain.execution import Execution
from domain.judging import (
    JUDGE_MAX_TOKENS,
    JudgeSpec,
    NotAVerdict,
    Verdict,
    judge_messages,
    parse_verdict,
    question_of,
    sampled,
)
from domain.llm import ChatMessage, estimate_prompt_tokens
from domain.run_plan import RunPlan

log = logging.getLogger(__name__)

JUDGED_KINDS = ("agent_execution", "chat_completion")  # never a judge's or a replay's run
ATTEMPTS = 2  # a reply that is no verdict is asked again once
RunWhole = Callable[[RunPlan, str], Awaitable[WithHeaders]]


class Quality:
    """`run_whole` runs a plan to its end under the tenant's limits (the actor's `_whole`)."""

    def __init__(self, runner: ExecutionRunner, run_whole: RunWhole) -> None:
        self.runner = runner
        self.run_whole = run_whole
        self._writing = asyncio.Lock()  # one feedback write at a time: no version clash
        self.judging: set[asyncio.Task[Any]] = set()

    async def give(
        self, execution_id: str, feedback: dict[str, Any], by: str, actor: str, may_write: bool
    ) -> dict[str, Any]:
        """Record a score on an ended execution. Without `executions:write` (`may_write`),
        only the credential that started the execution may score it."""
        async with self._writing:
            execution = await self._ended(execution_id)
            if not may_write and execution.caller != actor:
                raise PermissionDenied(
                    "this credential lacks the 'executions:write' scope and did not start "
                    f"execution {execution_id}"
                )
            feedback_id = str(uuid.uuid4())
            execution.give_feedback(
                feedback_id, feedback["score"], feedback.get("label"), feedback.get("comment"),
                feedback["source"], by,
            )  # fmt: skip
            await self.runner.store.save(execution)
        return {
            "feedback_id": feedback_id,
            "execution_id": execution_id,
            **{k: feedback.get(k) for k in ("score", "label", "comment", "source")},
            "by": actor,
        }

    async def _ended(self, execution_id: str) -> Execution:
        execution = await self.runner.stored(execution_id)
        if execution is None or execution.tenant_id != self.runner.tenant_id:
            raise NotFound(f"execution {execution_id} not found")
        if execution.status == "running":
            raise Conflict(
                f"execution {execution_id} is still running: feedback is on ended executions",
                execution_id=execution_id,
            )
        return execution

    def judge_later(self, plan: RunPlan, execution_id: str) -> None:
        """After an execution ended: judge it in the background if its plan has a judge and
        the judge's sample draws it (never on the request's path)."""
        spec = plan.judge
        if spec is None or plan.kind not in JUDGED_KINDS:
            return
        if not sampled(execution_id, float(spec.get("sample_rate", 1.0))):
            return
        task = asyncio.get_running_loop().create_task(self.judge(execution_id, spec))
        self.judging.add(task)
        task.add_done_callback(self._judged)

    def _judged(self, task: asyncio.Task[Any]) -> None:
        self.judging.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("judging failed: %r", task.exception())

    async def judge(self, execution_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Score a completed execution now and record the verdict (or the failure) on it:
        `{"score", "reason"}` or `{"error": {"type", "message"}}`, with `judge`: its model,
        rubric, runs, tokens and cost."""
        judge = JudgeSpec.model_validate(spec)
        execution = await self._ended(execution_id)
        answer = execution.outcome.answer
        if execution.status != "completed" or answer is None or execution.outcome.payload_erased:
            return {"error": {"type": "not_judged", "message": "only a completed execution "
                              "with its answer is judged"}}  # fmt: skip
        messages = judge_messages(
            judge, question_of(execution.request), answer.content or "", answer.tool_results
        )
        facts: dict[str, Any] = {"model": judge.model, "rubric": judge.rubric}
        facts.update(execution_ids=[], total_tokens=0, cost_usd=0.0)
        verdict, error = await self._ask(judge, execution, messages, facts)
        async with self._writing:
            execution = await self._ended(execution_id)
            if verdict is not None:
                execution.give_feedback(
                    str(uuid.uuid4()), verdict.score, judge.rubric, verdict.reason, "judge",
                    f"judge:{judge.model}", facts,
                )  # fmt: skip
            else:
                execution.fail_judging(facts, error)
            await self.runner.store.save(execution)
        if verdict is None:
            return {"error": error, "judge": facts}
        return {"score": verdict.score, "reason": verdict.reason, "judge": facts}

    async def _ask(
        self,
        judge: JudgeSpec,
        execution: Execution,
        messages: list[dict[str, str]],
        facts: dict[str, Any],
    ) -> tuple[Verdict | None, dict[str, Any]]:
        """Run the judge (again once if its reply is no verdict); `facts` gathers its runs."""
        error: dict[str, Any] = {}
        for _ in range(ATTEMPTS):
            plan = _judge_plan(judge, execution, messages)
            run_id = str(uuid.uuid4())
            facts["execution_ids"].append(run_id)
            try:
                result = (await self.run_whole(plan, run_id)).value
            except CBError as err:
                return None, {"type": err.type, "message": err.message}
            usage = result.get("usage") or {}
            facts["total_tokens"] += int(usage.get("total_tokens") or 0)
            facts["cost_usd"] = round(facts["cost_usd"] + float(usage.get("cost_usd") or 0), 9)
            facts["model_resolved"] = (result.get("metadata") or {}).get("model_resolved")
            reply = (result.get("response") or {}).get("content")
            try:
                return parse_verdict(reply), {}
            except NotAVerdict as exc:
                quoted = (reply or "")[:300]
                error = {"type": "judge_reply_invalid", "message": f"{exc}: {quoted}"}
        return None, error


def _judge_plan(judge: JudgeSpec, execution: Execution, messages: list[dict[str, str]]) -> RunPlan:
    """The judge's run: a chat completion of its model, sealed like the judged execution."""
    chat = [ChatMessage.model_validate(m) for m in messages]
    metadata = {"judged_execution_id": str(execution.id), "rubric": judge.rubric}
    return RunPlan(
        kind="judge",
        agent_id="",
        agent_version=0,
        model=judge.model,
        messages=chat,
        parameters={"temperature": 0, "max_tokens": JUDGE_MAX_TOKENS},
        request={"messages": messages, "metadata": metadata},
        estimated_tokens=estimate_prompt_tokens(chat) + JUDGE_MAX_TOKENS,
        subject_ref=execution.subject_ref,
    )
