"""The Execution aggregate: one run of an agent, from start to its terminal fact."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.results import Outcome, outcome_from_document, result_document

TERMINAL = ("completed", "failed", "cancelled")


class Execution(Aggregate):
    """Started and ModelResolved are saved together before the provider is called.

    With a `payload_kid`, the store keeps the payload of every event sealed under that key
    (`actors.shredding_mapper`): destroying the key erases it.

    A streamed execution also keeps its numbered stream events (packed, see
    `domain.stream_log`): in `Progressed` checkpoints while it runs, and the rest in its
    terminal event, so a client can resume the stream from the store alone.
    """

    @event("Started")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        agent_id: str,
        agent_version: int,
        request: dict[str, Any],
        model_requested: str,
        stream: bool,
        kind: str = "agent_execution",  # or "chat_completion"; not in events before it was kept
        trace_id: str | None = None,  # the W3C trace it ran in; not in events before either
        subject_ref: str | None = None,  # its data subject (`domain.shredding.subject_ref`)
        payload_kid: str | None = None,  # the key its payload is sealed under, if any
        caller: str | None = None,  # the credential that started it (`key:<id>`, `jwt:<sub>`)
    ) -> None:
        self.tenant_id = tenant_id
        self.caller = caller
        self.request = request  # as recorded (its payload erased marks, once erased)
        self.agent_version = agent_version
        self.tool_log: list[dict[str, Any]] = []  # each call and, once known, its answer
        self.feedback: list[dict[str, Any]] = []
        self.subject_ref = subject_ref
        self.payload_kid = payload_kid
        self.agent_id = agent_id
        self.kind = kind
        self.status = "running"
        self.model_requested = model_requested
        self.model_resolved: str | None = None
        self.stream = stream
        self.stream_events: list[list[Any]] = []
        self.stream_complete = False
        self.trace_id = trace_id
        self.outcome = Outcome(request_metadata=request.get("metadata") or {}, trace_id=trace_id)
        self.tool_calls = 0
        self.tool_errors = 0
        self.attempt = 1

    def restart_attempt(self, reason: dict[str, Any]) -> None:
        """Run again as a new attempt after an interruption (`domain.attempts`); `reason` is
        the error that ended the previous one. Its stream events are kept as they were."""
        self._attempt_restarted(self.tenant_id, self.attempt + 1, reason)

    @event("AttemptRestarted")
    def _attempt_restarted(self, tenant_id: str, attempt: int, reason: dict[str, Any]) -> None:
        self.attempt = attempt
        self.outcome = Outcome(
            request_metadata=self.request.get("metadata") or {}, trace_id=self.trace_id
        )

    class ModelResolved(Aggregate.Event):
        """The model the first call goes to, its provider and the routing decision."""

        tenant_id: str
        model: str
        provider: str
        routing: dict[str, Any]

        def apply(self, aggregate: Any) -> None:
            aggregate.model_resolved = self.model

    def resolve_model(self, model: str, provider: str, routing: dict[str, Any]) -> None:
        # the hot events (this and the ends) are triggered without the command-method
        # decorator, whose argument handling took about half of each one's time
        self.trigger_event(
            self.ModelResolved,
            tenant_id=self.tenant_id, model=model, provider=provider, routing=routing,
        )  # fmt: skip

    def call_tool(self, call_id: str, name: str, arguments: dict[str, Any], turn: int) -> None:
        """The model asked for a tool (turn counts the model's replies, from 1)."""
        self._tool_called(self.tenant_id, call_id, name, arguments, turn)

    @event("ToolCalled")
    def _tool_called(
        self, tenant_id: str, call_id: str, name: str, arguments: dict[str, Any], turn: int
    ) -> None:
        self.tool_calls += 1
        self.tool_log.append({"call_id": call_id, "name": name, "arguments": arguments})

    def record_tool_result(
        self,
        call_id: str,
        name: str,
        result: Any,
        error: dict[str, Any] | None,
        duration_ms: float,
    ) -> None:
        """What the tool answered, or the structured error the model was shown."""
        self._tool_result_recorded(self.tenant_id, call_id, name, result, error, duration_ms)

    @event("ToolResultRecorded")
    def _tool_result_recorded(
        self,
        tenant_id: str,
        call_id: str,
        name: str,
        result: Any,
        error: dict[str, Any] | None,
        duration_ms: float,
    ) -> None:
        if error is not None:
            self.tool_errors += 1
        for call in self.tool_log:
            if call["call_id"] == call_id:
                call.update(result=result, error=error)

    def apply_guardrails(self, stage: str, decisions: list[dict[str, Any]]) -> None:
        """Guardrail checks fired on the input (before the model) or the output: which
        check, its action and what it found, counted; never the text it matched."""
        self._guardrails_applied(self.tenant_id, stage, decisions)

    @event("GuardrailsApplied")
    def _guardrails_applied(
        self, tenant_id: str, stage: str, decisions: list[dict[str, Any]]
    ) -> None:
        pass

    def give_feedback(
        self,
        feedback_id: str,
        score: float,
        label: str | None,
        comment: str | None,
        source: str,
        by: str | None,
        judge: dict[str, Any] | None = None,
    ) -> None:
        """A score in [0, 1] on the ended execution; `judge` (a judge's: its model, rubric,
        execution ids, tokens and cost) is what scoring it took."""
        self._feedback_given(
            self.tenant_id, feedback_id, score, label, comment, source, by, judge
        )

    @event("FeedbackGiven")
    def _feedback_given(
        self,
        tenant_id: str,
        feedback_id: str,
        score: float,
        label: str | None,
        comment: str | None,
        source: str,
        by: str | None,
        judge: dict[str, Any] | None,
    ) -> None:
        self.feedback.append({"feedback_id": feedback_id, "score": score, "source": source})

    def fail_judging(self, judge: dict[str, Any], error: dict[str, Any]) -> None:
        """A judge could not score the execution (its reply was not a verdict, or its call
        failed): what was tried and what it cost, and why."""
        self._judge_failed(self.tenant_id, judge, error)

    @event("JudgeFailed")
    def _judge_failed(self, tenant_id: str, judge: dict[str, Any], error: dict[str, Any]) -> None:
        pass

    def checkpoint(self, stream_events: list[list[Any]], usage: dict[str, Any]) -> None:
        """Record the stream events sent since the last checkpoint, and the usage so far."""
        self._progressed(self.tenant_id, stream_events, usage)

    @event("Progressed")
    def _progressed(
        self, tenant_id: str, stream_events: list[list[Any]], usage: dict[str, Any]
    ) -> None:
        self.stream_events.extend(stream_events)

    # A terminal event's `stream_tail` holds the stream events not yet checkpointed; None
    # means they are unknown (the runtime died), so the recorded stream has a hole at its end.
    # Version 2 of the terminal events records the `Outcome` (facts); version 1 recorded the
    # API's result document and is read through `outcome_from_document`. Version 3's outcome
    # adds the time to first content (`ttft_ms`) and each attempt's provider and time to first
    # content; earlier versions load with those unknown (None).

    class Ended(Aggregate.Event):
        """A terminal event: the `Outcome`, and the stream events not yet checkpointed. Its
        subclass's name, lower-cased, is the status it ends in."""

        tenant_id: str
        outcome: dict[str, Any]
        stream_tail: list[list[Any]] | None

        class_version = 3

        def apply(self, aggregate: Any) -> None:
            aggregate._end(type(self).__name__.lower(), self.outcome, self.stream_tail)

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            result = state.pop("result")
            error = state.pop("error", None)  # Failed v1 kept it beside the result too
            state["outcome"] = outcome_from_document(
                {**result, "error": result.get("error") or error}
            )

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            outcome = state["outcome"]
            outcome["ttft_ms"] = None
            for attempt in outcome.get("attempts") or []:
                attempt.setdefault("provider", None)
                attempt["ttft_ms"] = None

    class Completed(Ended):
        pass

    class Failed(Ended):
        pass

    class Cancelled(Ended):
        pass

    def complete(self, outcome: Outcome, stream_tail: list[list[Any]] | None = None) -> None:
        self._ended(self.Completed, outcome, stream_tail)

    def fail(self, outcome: Outcome, stream_tail: list[list[Any]] | None = None) -> None:
        """End in failure; `outcome.error` says why."""
        assert outcome.error is not None, "a failed execution says why"
        self._ended(self.Failed, outcome, stream_tail)

    def cancel(self, outcome: Outcome, stream_tail: list[list[Any]] | None = None) -> None:
        self._ended(self.Cancelled, outcome, stream_tail)

    _ending: Outcome | None = None  # the Outcome an end being triggered here was made from

    def _ended(
        self, kind: type[Execution.Ended], outcome: Outcome, stream_tail: list[list[Any]] | None
    ) -> None:
        # the event records the facts; applied here, it takes a copy of `outcome` itself
        # rather than validating the facts back into one (replayed, they are validated)
        self._ending = outcome
        try:
            self.trigger_event(
                kind, tenant_id=self.tenant_id, outcome=outcome.facts(), stream_tail=stream_tail
            )
        finally:
            del self._ending

    def _end(self, status: str, outcome: dict[str, Any], tail: list[list[Any]] | None) -> None:
        self.status = status
        ending = self._ending
        self.outcome = (
            ending.model_copy() if ending is not None else Outcome.model_validate(outcome)
        )
        self.stream_complete = tail is not None
        self.stream_events.extend(tail or [])

    @property
    def result(self) -> dict[str, Any]:
        """The execution as the API shows it (its terminal state, or running)."""
        return result_document(
            str(self.id), self.agent_id, self.status, self.model_requested, self.outcome
        )
