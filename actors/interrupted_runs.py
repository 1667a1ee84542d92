"""Executions a previous incarnation of the tenant's actor left running: run again as a new
attempt when their client comes back for them, else recorded as failed.

Only the tenant's actor runs its executions, so one still `running` in the store and last
written before this incarnation began was interrupted. One that may run again
(`domain.attempts.may_restart`) waits `grace_s` for its client's retry or resume; the others,
and those nobody came back for, are recorded `failed` with `execution_interrupted`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from actors import metrics
from actors.event_store import AsyncEventStore
from domain.attempts import may_restart
from domain.errors import ExecutionInterrupted
from domain.execution import Execution
from domain.results import ErrorInfo, Outcome

log = logging.getLogger(__name__)

RESTART_GRACE_S = 30.0  # how long an interrupted execution waits for its client to come back


def interruption(execution_id: str) -> ExecutionInterrupted:
    return ExecutionInterrupted(
        "the tenant's runtime stopped before the execution finished", execution_id=execution_id
    )


class InterruptedRuns:
    """The interrupted executions of one tenant actor's incarnation."""

    def __init__(
        self,
        store: AsyncEventStore,
        stored: Callable[[str], Awaitable[Execution | None]],
        grace_s: float = RESTART_GRACE_S,
    ) -> None:
        self.store = store
        self.stored = stored
        self.grace_s = grace_s
        self.born = time.time()
        self.restarting: set[str] = set()  # claimed by a new attempt not yet recorded
        self._waiting: asyncio.Task[None] | None = None

    def orphaned(self, execution: Execution) -> bool:
        """Running, and last written by an earlier incarnation (so not running now)."""
        return execution.status == "running" and execution.modified_on.timestamp() < self.born

    async def settle(self, execution_ids: list[str]) -> int:
        """At the actor's start: fail the interrupted executions that may not run again; the
        others wait for their client (and are failed after `grace_s` if it never comes)."""
        waiting, failed = [], 0
        for execution_id in execution_ids:
            execution = await self.stored(execution_id)
            if execution is None or not self.orphaned(execution):
                continue
            if may_restart(execution.kind, execution.attempt, execution.tool_log):
                waiting.append(execution_id)
            else:
                await self._fail(execution)
                failed += 1
        if waiting:
            self._waiting = asyncio.get_running_loop().create_task(self._fail_later(waiting))
        return failed

    async def claim(self, execution_id: str) -> Execution | None:
        """The interrupted execution to run again now, claimed (`release` it once its new
        attempt is recorded); None when it never started. Raises `ExecutionInterrupted` when
        it ran and may not run again (failed here if nobody had recorded its end)."""
        execution = await self.stored(execution_id)
        if execution is None:
            return None
        if execution_id not in self.restarting and self.orphaned(execution):
            if may_restart(execution.kind, execution.attempt, execution.tool_log):
                self.restarting.add(execution_id)
                return execution
            await self._fail(execution)
        raise ExecutionInterrupted(
            f"execution {execution_id} was interrupted ({execution.status}); not rerun",
            execution_id=execution_id,
        )

    def release(self, execution_id: str) -> None:
        self.restarting.discard(execution_id)

    async def _fail_later(self, execution_ids: list[str]) -> None:
        await asyncio.sleep(self.grace_s)
        for execution_id in execution_ids:
            if execution_id in self.restarting:
                continue
            execution = await self.stored(execution_id)
            if execution is not None and self.orphaned(execution):
                try:
                    await self._fail(execution)
                except Exception:  # a new attempt recorded meanwhile: it stands
                    log.warning("interrupted execution %s not failed", execution_id, exc_info=True)

    async def _fail(self, execution: Execution) -> None:
        error = interruption(str(execution.id))
        execution.fail(Outcome(error=ErrorInfo.model_validate(error.to_dict())))
        await self.store.save(execution)
        metrics.execution_ended(execution.tenant_id, execution.kind, "failed", 0.0, None, 0.0)
        log.info("execution %s interrupted; recorded failed", execution.id)
