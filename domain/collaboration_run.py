"""One run of a collaboration, event-sourced: started (definition and inputs), each step's
start (its resolved input and execution), completion, failure or skip, and how it ended.

Every recorded event carries its number in the run's stream (`seq`), and each step attempt
that ended records the numbers its execution's events were relayed under (`seqs`, as
ranges), so the stream is rebuilt exactly from the store (`rebuilt_stream`). A runner that
stops half-way (its actor died) resumes from these events: finished steps stay finished,
an attempt that was in flight counts as failed (`interrupted`) and is retried by its policy.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.collaboration import CollaborationDefinition

TOKENS = ("prompt_tokens", "completion_tokens", "total_tokens")
FINISHED = ("completed", "failed", "skipped")
EPOCH = 1_000_000  # a resumed run numbers its new events from the next multiple of this


class CollaborationRun(Aggregate):
    """A run of one tenant's collaboration (saved or inline)."""

    @event("Started")
    def __init__(
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        collaboration_id: str | None,
        version: int | None,
        definition: dict[str, Any],
        inputs: dict[str, Any],
        by: str | None,
    ) -> None:
        self.tenant_id = tenant_id
        self.collaboration_id = collaboration_id
        self.collaboration_version = version
        self.definition = definition
        self.inputs = inputs
        self.by = by
        self.status = "running"
        self.output: Any = None
        self.error: dict[str, Any] | None = None
        self.steps: dict[str, dict[str, Any]] = {
            s["id"]: {
                "id": s["id"],
                "status": "pending",
                "attempts": 0,
                "execution_ids": [],
                "input": None,
                "output": None,
                "error": None,
                "usage": None,
                "cost_usd": 0.0,
                "duration_ms": None,
            }
            for s in definition["steps"]
        }
        # the run's own stream events as recorded: (seq, event, data)
        self.log: list[tuple[int, str, dict[str, Any]]] = [(1, "run_start", self._opening())]
        self.relayed: dict[str, list[list[int]]] = {}  # execution id -> seq ranges
        self.last_seq = 1

    def _opening(self) -> dict[str, Any]:
        return {
            "run_id": str(self.id),
            "collaboration_id": self.collaboration_id,
            "version": self.collaboration_version,
            "name": self.definition["name"],
            "steps": [s["id"] for s in self.definition["steps"]],
        }

    @property
    def spec(self) -> CollaborationDefinition:
        return CollaborationDefinition.model_validate(self.definition)

    def _logged(self, seq: int, name: str, data: dict[str, Any]) -> None:
        self.log.append((seq, name, data))
        self.last_seq = max(self.last_seq, seq)

    def _relayed(self, execution_id: str | None, seqs: list[list[int]]) -> None:
        if execution_id and seqs:
            self.relayed[execution_id] = seqs
            self.last_seq = max(self.last_seq, seqs[-1][1])

    # steps

    def start_step(self, step_id: str, execution_id: str, text: str, seq: int) -> None:
        attempt = self.steps[step_id]["attempts"] + 1
        self._step_started(self.tenant_id, step_id, attempt, execution_id, text, seq)

    @event("StepStarted")
    def _step_started(
        self,
        tenant_id: str,
        step_id: str,
        attempt: int,
        execution_id: str,
        input: str,  # noqa: A002
        seq: int,
    ) -> None:
        step = self.steps[step_id]
        step.update(status="running", attempts=attempt, input=input)
        step["execution_ids"].append(execution_id)
        self._logged(
            seq,
            "step_start",
            {"step_id": step_id, "attempt": attempt, "execution_id": execution_id, "input": input},
        )

    def complete_step(
        self,
        step_id: str,
        execution_id: str,
        output: str,
        usage: dict[str, Any],
        duration_ms: float | None,
        seqs: list[list[int]],
        seq: int,
    ) -> None:
        self._step_completed(
            self.tenant_id, step_id, execution_id, output, usage, duration_ms, seqs, seq
        )

    @event("StepCompleted")
    def _step_completed(
        self,
        tenant_id: str,
        step_id: str,
        execution_id: str,
        output: str,
        usage: dict[str, Any],
        duration_ms: float | None,
        seqs: list[list[int]],
        seq: int,
    ) -> None:
        step = self.steps[step_id]
        cost = float(usage.get("cost_usd") or 0.0)
        step.update(
            status="completed",
            output=output,
            error=None,
            duration_ms=duration_ms,
            usage=_summed(step["usage"], usage),
            cost_usd=step["cost_usd"] + cost,
        )
        self._relayed(execution_id, seqs)
        self._logged(
            seq,
            "step_complete",
            {
                "step_id": step_id,
                "execution_id": execution_id,
                "output": output,
                "usage": usage,
                "duration_ms": duration_ms,
            },
        )

    def fail_step(
        self,
        step_id: str,
        execution_id: str | None,
        error: dict[str, Any],
        usage: dict[str, Any] | None,
        final: bool,
        seqs: list[list[int]],
        seq: int,
    ) -> None:
        attempt = self.steps[step_id]["attempts"]
        self._step_failed(
            self.tenant_id, step_id, execution_id, attempt, error, usage or {}, final, seqs, seq
        )

    @event("StepFailed")
    def _step_failed(
        self,
        tenant_id: str,
        step_id: str,
        execution_id: str | None,
        attempt: int,
        error: dict[str, Any],
        usage: dict[str, Any],
        final: bool,
        seqs: list[list[int]],
        seq: int,
    ) -> None:
        step = self.steps[step_id]
        cost = float(usage.get("cost_usd") or 0.0)
        step.update(
            error=error,
            usage=_summed(step["usage"], usage),
            cost_usd=step["cost_usd"] + cost,
            status="failed" if final else "retrying",
        )
        self._relayed(execution_id, seqs)
        self._logged(
            seq,
            "step_failed",
            {
                "step_id": step_id,
                "execution_id": execution_id,
                "attempt": attempt,
                "error": error,
                "will_retry": not final,
            },
        )

    def skip_step(self, step_id: str, reason: str, seq: int) -> None:
        self._step_skipped(self.tenant_id, step_id, reason, seq)

    @event("StepSkipped")
    def _step_skipped(self, tenant_id: str, step_id: str, reason: str, seq: int) -> None:
        self.steps[step_id].update(status="skipped", error={"type": "skipped", "message": reason})
        self._logged(seq, "step_skipped", {"step_id": step_id, "reason": reason})

    # the run

    def resume(self) -> int:
        """The actor came back: attempts in flight are recorded as interrupted; the first
        number of the resumed run's events (the next epoch, above any number sent before)."""
        base = (self.last_seq // EPOCH + 1) * EPOCH
        running = [i for i, s in self.steps.items() if s["status"] == "running"]
        self._resumed(self.tenant_id, running, base)
        return base + 1

    @event("Resumed")
    def _resumed(self, tenant_id: str, interrupted: list[str], seq: int) -> None:
        for step_id in interrupted:
            self.steps[step_id].update(status="retrying", error=INTERRUPTED)
        self._logged(seq, "run_resumed", {"interrupted": interrupted})

    def end(self, status: str, error: dict[str, Any] | None, seq: int) -> None:
        """`completed` (the output step completed), `failed` or `cancelled`."""
        output_step = self.steps[self.definition["output"]]
        output = output_step["output"] if output_step["status"] == "completed" else None
        self._ended(self.tenant_id, status, output, error, seq)

    @event("Ended")
    def _ended(
        self, tenant_id: str, status: str, output: Any, error: dict[str, Any] | None, seq: int
    ) -> None:
        self.status, self.output, self.error = status, output, error
        self._logged(seq, *terminal_event(self))

    # reads

    def usage(self) -> dict[str, Any]:
        """Tokens and cost of every attempt of every step."""
        total: dict[str, Any] = {k: 0 for k in TOKENS}
        for step in self.steps.values():
            for key in TOKENS:
                total[key] += int((step["usage"] or {}).get(key) or 0)
        total["cost_usd"] = round(sum(s["cost_usd"] for s in self.steps.values()), 9)
        return total

    def ready(self) -> list[str]:
        """Steps not finished or running whose dependencies have all finished."""
        status = {i: s["status"] for i, s in self.steps.items()}
        return [
            s["id"]
            for s in self.definition["steps"]
            if status[s["id"]] in ("pending", "retrying")
            and all(status[d] in FINISHED for d in s["depends_on"])
        ]


INTERRUPTED = {"type": "interrupted", "message": "the tenant's actor stopped mid-attempt"}


def _summed(before: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    out = {k: int((before or {}).get(k) or 0) + int(more.get(k) or 0) for k in TOKENS}
    out["cost_usd"] = round(
        float((before or {}).get("cost_usd") or 0) + float(more.get("cost_usd") or 0), 9
    )
    return out


def terminal_event(run: CollaborationRun) -> tuple[str, dict[str, Any]]:
    """`run_complete` with the output, or `error` saying how the run ended."""
    if run.status == "completed":
        return "run_complete", {
            "run_id": str(run.id),
            "status": run.status,
            "output": run.output,
            "usage": run.usage(),
        }
    error = run.error or {}
    return "error", {
        "type": error.get("type", f"collaboration_{run.status}"),
        "message": error.get("message", f"the run {run.status}"),
        "run_id": str(run.id),
        "status": run.status,
    }


def state_of(run: CollaborationRun) -> dict[str, Any]:
    """The run as the API shows it."""
    steps = []
    for spec in run.definition["steps"]:
        step = run.steps[spec["id"]]
        ids = step["execution_ids"]
        steps.append(
            {
                **{
                    k: step[k]
                    for k in ("id", "status", "attempts", "input", "output", "error", "duration_ms")
                },
                "execution_id": ids[-1] if ids else None,
                "execution_ids": list(ids),
                "usage": step["usage"],
                "cost_usd": round(step["cost_usd"], 9),
            }
        )
    return {
        "run_id": str(run.id),
        "collaboration_id": run.collaboration_id,
        "version": run.collaboration_version,
        "name": run.definition["name"],
        "status": run.status,
        "output": run.output,
        "error": run.error,
        "inputs": run.inputs,
        "steps": steps,
        "usage": run.usage(),
        "created_at": run.created_on.isoformat(),
        "ended_at": None if run.status == "running" else run.modified_on.isoformat(),
        "by": run.by,
    }


def rebuilt_stream(
    run: CollaborationRun, executions: dict[str, list[dict[str, Any]]], after: int
) -> list[dict[str, Any]]:
    """The run's stream after id `after`, from its recorded events and the recorded events
    of its steps' executions (non-terminal ones, in their order), each under the number it
    was relayed with."""
    out = [{"id": seq, "event": name, "data": data} for seq, name, data in run.log if seq > after]
    for execution_id, ranges in run.relayed.items():
        numbers = [n for start, end in ranges for n in range(start, end + 1)]
        step_id = _step_of(run, execution_id)
        for seq, item in zip(numbers, executions.get(execution_id, []), strict=False):
            if seq > after:
                out.append(
                    {
                        "id": seq,
                        "event": item["event"],
                        "data": {**item["data"], "step_id": step_id},
                    }
                )
    out.sort(key=lambda e: e["id"])
    return out


def _step_of(run: CollaborationRun, execution_id: str) -> str | None:
    return next((i for i, s in run.steps.items() if execution_id in s["execution_ids"]), None)


def as_ranges(numbers: list[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 8] -> [[1, 3], [7, 8]]."""
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ranges
