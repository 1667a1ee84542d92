"""One running streamed execution inside its tenant actor: its events, watchers and checkpoints."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from domain.errors import CBError
from domain.stream_log import TERMINAL_EVENTS, Packed, pack

log = logging.getLogger(__name__)


class LiveStream:
    """Numbered events as the runner emits them (ids from `first_id_before + 1`: 1, or a
    restarted attempt's first, `domain.attempts`), kept until the run ends.

    Any number of watchers (the original client, clients resuming it) read from their own
    position and get whatever is waiting as one batch. With `cancel_on_disconnect`, the run is
    cancelled when its last watcher leaves. A checkpoint is due every `checkpoint_s`, or every
    `pace()` seconds when that is longer (`checkpoint_interval`).
    """

    def __init__(
        self,
        execution_id: str,
        cancel_on_disconnect: bool,
        checkpoint_s: float,
        first_id_before: int = 0,
        pace: Callable[[], float] | None = None,
    ):
        self.execution_id = execution_id
        self.base = first_id_before
        self.cancel_on_disconnect = cancel_on_disconnect
        self.checkpoint_s = checkpoint_s
        self.pace = pace
        self.events: list[dict[str, Any]] = []
        self.content: list[str] = []
        self.usage: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self.watchers = 0
        self._waiting: list[asyncio.Future[None]] = []  # one per watcher waiting now
        self._checkpointed = 0
        self._last_checkpoint = time.monotonic()
        self._saves: list[tuple[list[Any], asyncio.Future[None]]] = []

    @classmethod
    def replayed(cls, execution_id: str, events: list[dict[str, Any]]) -> LiveStream:
        """A stream that already ended, holding its recorded events (for a reader that
        joins it by idempotency key)."""
        live = cls(execution_id, cancel_on_disconnect=False, checkpoint_s=0.0)
        live.events = events
        return live

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The run that emits into this stream."""
        return self._task

    @task.setter
    def task(self, task: asyncio.Task[None] | None) -> None:
        self._task = task
        if task is not None:
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The run is over: wake the watchers. A run that ended (not cancelled) without a
        terminal event is a fault of this service; an `internal_error` event ends the stream,
        so no reader waits for one forever."""
        done = bool(self.events) and self.events[-1]["event"] in TERMINAL_EVENTS
        if done or task.cancelled():
            self._wake_watchers()
            return
        failure = task.exception()
        log.error(
            "execution %s ended without a terminal event", self.execution_id, exc_info=failure
        )
        error = CBError("the execution ended without an outcome", execution_id=self.execution_id)
        self.emit("error", error.to_dict())

    @property
    def last_id(self) -> int:
        return self.base + len(self.events)

    @property
    def text(self) -> str:
        """The content sent so far."""
        return "".join(self.content)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        self.events.append({"id": self.last_id + 1, "event": event, "data": data})
        if event == "content_chunk":
            self.content.append(data["delta"])
        elif event == "usage_update":
            self.usage = data
        self._wake_watchers()

    def _wake_watchers(self) -> None:
        """Wake the watchers waiting now; one that is not waiting sees the new events when it
        next looks (a chunk emitted while none waits costs no event object)."""
        if self._waiting:
            waiting, self._waiting = self._waiting, []
            for waiter in waiting:
                if not waiter.done():  # a watcher that left cancelled its own
                    waiter.set_result(None)

    async def watch(self, after: int) -> AsyncIterator[list[dict[str, Any]]]:
        """Batches of the events after `after`, live, until the terminal one."""
        self.watchers += 1
        try:
            cursor = max(0, after - self.base)  # an index into the events
            while True:
                if cursor < len(self.events):
                    batch = self.events[cursor:]
                    cursor = len(self.events)
                    yield batch
                    if batch[-1]["event"] in TERMINAL_EVENTS:
                        return
                elif self.task is not None and self.task.done():
                    return
                else:
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiting.append(waiter)
                    await waiter
        finally:
            self.watchers -= 1
            self.abandon()

    def abandon(self) -> None:
        """A watcher left (or never came): with `cancel_on_disconnect`, the last one cancels."""
        if (
            self.cancel_on_disconnect
            and self.watchers == 0
            and self.task is not None
            and not self.task.done()
        ):
            self.task.cancel()

    def state(self) -> dict[str, Any]:
        """What a reader of the running execution sees: content and usage so far."""
        usage = {k: v for k, v in (self.usage or {}).items() if k != "execution_id"}
        return {"content": self.text, "usage": usage or None, "last_event_id": self.last_id}

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint_due(self) -> bool:
        if len(self.events) <= self._checkpointed:
            return False
        every = self.checkpoint_s if self.pace is None else max(self.checkpoint_s, self.pace())
        return time.monotonic() - self._last_checkpoint >= every

    def take_unrecorded(self) -> list[Packed]:
        """The events not yet handed to a checkpoint, packed for the store."""
        taken = self.events[self._checkpointed :]
        self._checkpointed = len(self.events)
        self._last_checkpoint = time.monotonic()
        return pack(taken)

    def saving(self, events: list[Any], done: asyncio.Future[None]) -> None:
        """Track a checkpoint's save; `failed_saves` gives its events back if it fails."""
        self._saves.append((events, done))

    @property
    def saving_checkpoints(self) -> bool:
        """Whether checkpoint saves are tracked that `failed_saves` has not yet waited for."""
        return bool(self._saves)

    async def failed_saves(self) -> list[Any]:
        """Wait for the checkpoint saves; the store events of those that failed, in order."""
        failed: list[Any] = []
        for events, done in self._saves:
            try:
                await done
            except Exception:
                log.warning("checkpoint of execution %s failed; saving it again", self.execution_id)
                failed.extend(events)
        self._saves.clear()
        return failed


def checkpoint_interval(live_streams: int, per_s: float) -> float:
    """Seconds between one stream's checkpoints so that `live_streams` streams checkpoint at
    most `per_s` times a second between them (0: no bound)."""
    return live_streams / per_s if per_s > 0 else 0.0
