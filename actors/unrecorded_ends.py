"""Executions whose end the store did not take (it was down), recorded once it is back.

The store refused the start or the terminal event, or held it (down, its writes retrying)
past the operator's bound. The client was answered 503 `service_unavailable` with the
execution id (an answer is sent only once it is durable). Once the store is back: a held
write that then landed stands (a terminal event landed: the execution reads as it ended);
otherwise the execution is recorded failed with that error, keeping what its outcome knew
(usage and cost the provider charged, attempts). Until then a started one reads `running`;
nothing else would finish it, since the actor that ran it is still alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from eventsourcing.persistence import PersistenceError

from actors.event_store import AsyncEventStore
from domain.errors import ServiceUnavailable
from domain.execution import Execution
from domain.results import ErrorInfo, Outcome

log = logging.getLogger(__name__)

RETRY_S = 1.0


class EndNotRecorded(ServiceUnavailable):
    """The store refused the execution's start or end, or held it past the bound: its client
    is told to retry; the end is recorded (as this error) when the store is back, unless a
    held write landed."""


class UnrecordedEnds:
    """Execution id → its outcome, for executions whose end awaits the store's return."""

    def __init__(
        self, store: AsyncEventStore, stored: Callable[[str], Awaitable[Execution | None]]
    ) -> None:
        self.store = store
        self.stored = stored
        self.pending: dict[str, Outcome] = {}
        self.waiting: dict[str, Awaitable[None]] = {}  # a held save not settled yet
        self._task: asyncio.Task[None] | None = None

    def add(
        self, execution: Execution, outcome: Outcome, after: Awaitable[None] | None = None
    ) -> EndNotRecorded:
        """Keep `execution`'s end for later, to be recorded once `after` (a save of it still
        pending) is settled; the error its client is answered with."""
        execution_id = str(execution.id)
        if after is not None:
            self.waiting[execution_id] = after
        err = EndNotRecorded(
            "the event store is unavailable: this execution's outcome is not recorded yet "
            f"(GET /api/v1/executions/{execution_id} shows it once the store is back); retry",
            retry_after=2,
            execution_id=execution_id,
        )
        self.pending[execution_id] = outcome.model_copy(
            update={
                "error": ErrorInfo(type=err.type, message=err.message, execution_id=execution_id)
            }
        )
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._record_when_back())
        log.error("execution %s ended while the event store was unavailable", execution_id)
        return err

    async def _record_when_back(self) -> None:
        while self.pending:
            await asyncio.sleep(RETRY_S)
            for execution_id in list(self.pending):
                try:
                    await self._record(execution_id)
                except PersistenceError:
                    break  # still down: try again later
                except Exception:
                    log.exception("recording the end of execution %s failed", execution_id)
                    break

    async def _record(self, execution_id: str) -> None:
        outcome = self.pending[execution_id]
        if execution_id in self.waiting:
            with contextlib.suppress(Exception):  # failed: nothing was written, nothing to end
                await self.waiting[execution_id]
            del self.waiting[execution_id]
        execution = await self.stored(execution_id)
        if execution is not None and execution.status == "running":  # no end landed
            execution.fail(outcome)
            await self.store.save(execution)
            log.info("execution %s recorded failed: its end was refused by the store", execution_id)
        del self.pending[execution_id]
