"""Streams of typed events, sync (`Stream`) and async (`AsyncStream`): SSE parsed as it
arrives, a dropped connection (or a heartbeat that never came) resumed with
`Last-Event-ID` a bounded number of times, events already seen skipped, and closing the
iterator closing the HTTP stream; `cancel()` cancels the execution upstream by id (closing a
resumable stream does not: it asks for `on_disconnect: "continue"`), then closes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from circuit_breaker._calls import execution_cancel
from circuit_breaker._core import Config, api_error, wrap_transport_error
from circuit_breaker._retry import RETRY_STATUSES, never_sent
from circuit_breaker._sse import SSEParser
from circuit_breaker._transport import AsyncRunner, SyncRunner
from circuit_breaker.errors import APIError, ExecutionCancelledError, StreamError
from circuit_breaker.events import (
    TERMINAL,
    AttemptRestarted,
    ContentChunk,
    Error,
    ExecutionComplete,
    ExecutionStart,
    StreamEvent,
    parse_event,
)
from circuit_breaker.models import Execution, ExecutionResult


class _Dropped(Exception):
    """The stream ended without a terminal event."""


@dataclass
class StreamRequest:
    """How a stream starts (`method`, `path`, `json`, `params`) and how it is resumed."""

    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    execution_id: str | None = None
    last_event_id: int = 0
    heartbeat_s: float | None = None
    heartbeat_timeout: float | None = None
    max_resumes: int = 5


@dataclass
class _State:
    """What a stream has seen: the last id, the execution, the text, the end."""

    execution_id: str | None = None
    last_event_id: int = 0
    parts: list[str] = field(default_factory=list)
    attempt: int = 1  # the execution's attempt whose events come now
    result: ExecutionResult | None = None
    error: Error | None = None
    resumes: int = 0  # reconnections in all
    failures: int = 0  # drops since the last event delivered (bounded by `max_resumes`)
    done: bool = False

    def accept(self, event: StreamEvent) -> bool:
        """Record `event`; False for one already delivered (a resume overlapping)."""
        if event.event_id is not None:
            if event.event_id <= self.last_event_id:
                return False
            self.last_event_id = event.event_id
        self.failures = 0
        if isinstance(event, ExecutionStart) and event.execution_id:
            self.execution_id = event.execution_id
        elif isinstance(event, ContentChunk):
            self.parts.append(event.delta)
        elif isinstance(event, AttemptRestarted):
            self.parts.clear()  # the interrupted attempt's text is void
            self.attempt = event.attempt
        elif isinstance(event, ExecutionComplete):
            self.result = event.result
        elif isinstance(event, Error):
            self.error = event
        if event.execution_id and not self.execution_id:
            self.execution_id = event.execution_id
        if event.type in TERMINAL:
            self.done = True
        return True


def _interrupted(event: StreamEvent | None, state: _State, req: StreamRequest) -> bool:
    """The live stream's `execution_interrupted` without an id: the runtime died and the
    store holds the stream to its last checkpoint, so the client resumes from there (the
    replay ends with the same error, with an id, or says what was lost)."""
    return (
        isinstance(event, Error)
        and event.event_id is None
        and event.error_type == "execution_interrupted"
        and state.execution_id is not None
        and req.max_resumes > 0
    )


def _timeout(config: Config, req: StreamRequest) -> httpx.Timeout:
    read = req.heartbeat_timeout
    if read is None:
        read = (req.heartbeat_s or 15.0) * 2 + 5.0
    return httpx.Timeout(config.timeout, read=read)


def _resume_request(req: StreamRequest, state: _State) -> tuple[str, str, dict[str, Any]]:
    params = {"heartbeat_s": req.heartbeat_s} if req.heartbeat_s else {}
    return "GET", f"/api/v1/executions/{state.execution_id}/stream", params


class _StreamBase:
    _state: _State
    _config: Config
    _opened = False  # iteration began: a request may be under way
    _cancelling = False  # `cancel()` was called: a drop ends the stream, no resume
    _cancelled = False  # the server recorded the cancellation

    @property
    def execution_id(self) -> str | None:
        """The execution's id (known once `execution_start` arrived)."""
        return self._state.execution_id

    @property
    def last_event_id(self) -> int:
        return self._state.last_event_id

    @property
    def resumes(self) -> int:
        """How many times the stream was resumed after a drop."""
        return self._state.resumes

    @property
    def content(self) -> str:
        """The text received so far."""
        return "".join(self._state.parts)

    def _not_started(self) -> StreamError:
        return StreamError(
            f"no execution_start within {self._config.timeout} s: nothing to cancel by id yet"
        )

    def _final(self) -> ExecutionResult:
        if self._state.error is not None:
            raise self._state.error.to_exception()
        if self._state.result is None:
            if self._cancelled:
                raise ExecutionCancelledError(
                    f"execution {self.execution_id} was cancelled",
                    execution_id=self.execution_id,
                )
            raise StreamError("the stream ended without a result")
        return self._state.result


class Stream(_StreamBase):
    """An iterator of typed events; `final()` reads to the end and gives the result.

    Use it in a `with` block, or call `close()`, to close the connection before the end;
    `cancel()` also cancels the execution upstream.
    """

    def __init__(self, http: httpx.Client, config: Config, req: StreamRequest) -> None:
        self._http = http
        self._config = config
        self._req = req
        self._state = _State(execution_id=req.execution_id, last_event_id=req.last_event_id)
        self._known = threading.Event()  # the execution id is known, or the stream is over
        if req.execution_id:
            self._known.set()
        self._it = self._run()

    def __iter__(self) -> Iterator[StreamEvent]:
        return self

    def __next__(self) -> StreamEvent:
        return next(self._it)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP stream (the generator's `finally` closes the response). A resumable
        stream's execution runs on on the server: `cancel()` stops it."""
        self._it.close()

    def cancel(self) -> Execution | None:
        """Cancel the execution upstream (`POST /api/v1/executions/{id}/cancel`), then close
        the stream; the execution's record (status `cancelled`), or None for a stream never
        read (nothing started). Read in another thread and before `execution_start`, it
        waits for that event (up to the client's timeout). A stream whose execution ended
        otherwise raises `ConflictError`. The iteration then ends (a reader in another
        thread gets the cancellation's `error` event first); `final()` raises
        `ExecutionCancelledError`."""
        self._cancelling = True
        try:
            if self._opened and not self._known.wait(self._config.timeout):
                raise self._not_started()
            if self._state.execution_id is None:
                return None  # never opened, or refused before it started anything
            runner = SyncRunner(self._config, self._http)
            record = runner.run(execution_cancel(self._state.execution_id))
            self._cancelled = True
            return record
        finally:
            if not self._it.gi_running:  # else another thread reads: the server ends it
                self._it.close()

    def final(self) -> ExecutionResult:
        """Read the rest of the stream and return the execution's result (raises the typed
        error of an `error` event)."""
        for _ in self._it:
            pass
        return self._final()

    result = final

    def _run(self) -> Iterator[StreamEvent]:
        self._opened = True
        events = self._events()
        try:
            for event in events:
                if self._state.execution_id:
                    self._known.set()
                yield event
        finally:
            self._known.set()
            events.close()

    def _events(self) -> Iterator[StreamEvent]:
        req, state, policy = self._req, self._state, self._config.retry
        method, path, params, body = req.method, req.path, req.params or {}, req.json
        attempt = 0
        while True:
            headers = self._config.auth_headers()
            headers["Accept"] = "text/event-stream"
            if state.last_event_id:
                headers["Last-Event-ID"] = str(state.last_event_id)
            try:
                with self._http.stream(
                    method,
                    path,
                    json=body,
                    params=params or None,
                    headers=headers,
                    timeout=_timeout(self._config, req),
                ) as response:
                    if response.status_code >= 400:
                        response.read()
                        error = api_error(response)
                        if (
                            response.status_code in RETRY_STATUSES
                            and error.execution_id is None
                            and attempt < policy.max_retries
                        ):
                            time.sleep(policy.wait(attempt, error.retry_after))
                            attempt += 1
                            continue
                        raise error
                    parser = SSEParser()
                    for text in response.iter_text():
                        for message in parser.feed(text):
                            event = parse_event(message.event, message.data, message.id)
                            if _interrupted(event, state, req):
                                raise _Dropped("the runtime went away: resume from the store")
                            if event is None or not state.accept(event):
                                continue
                            yield event
                            if state.done:
                                return
                    raise _Dropped("the stream ended before its terminal event")
            except (httpx.TransportError, _Dropped) as exc:
                if self._cancelling:
                    return
                if state.execution_id is None:
                    if (
                        isinstance(exc, httpx.TransportError)
                        and never_sent(exc)
                        and (attempt < policy.max_retries)
                    ):
                        time.sleep(policy.wait(attempt))
                        attempt += 1
                        continue
                    if isinstance(exc, httpx.TransportError):
                        raise wrap_transport_error(exc) from exc
                    raise StreamError(str(exc)) from exc
                if state.failures >= req.max_resumes:
                    raise StreamError(
                        f"stream of {state.execution_id} dropped {state.failures + 1} times "
                        f"without progress: {exc!r}"
                    ) from exc
                time.sleep(policy.wait(state.failures - 1) if state.failures else 0.05)
                state.failures += 1
                state.resumes += 1
                method, path, params = _resume_request(req, state)
                body = None


class AsyncStream(_StreamBase):
    """An async iterator of typed events; `await final()` reads to the end. Use `async with`
    or `await aclose()` to close the connection before the end; `await cancel()` also
    cancels the execution upstream."""

    def __init__(self, http: httpx.AsyncClient, config: Config, req: StreamRequest) -> None:
        self._http = http
        self._config = config
        self._req = req
        self._state = _State(execution_id=req.execution_id, last_event_id=req.last_event_id)
        self._known = asyncio.Event()  # the execution id is known, or the stream is over
        if req.execution_id:
            self._known.set()
        self._it = self._run()

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self

    async def __anext__(self) -> StreamEvent:
        return await self._it.__anext__()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP stream."""
        await self._it.aclose()

    close = aclose

    async def cancel(self) -> Execution | None:
        """Cancel the execution upstream, then close the stream (see `Stream.cancel`; read
        in another task before `execution_start`, it waits for that event)."""
        self._cancelling = True
        try:
            if self._opened and not self._known.is_set():
                try:
                    await asyncio.wait_for(self._known.wait(), self._config.timeout)
                except TimeoutError:
                    raise self._not_started() from None
            if self._state.execution_id is None:
                return None
            runner = AsyncRunner(self._config, self._http)
            record = await runner.run(execution_cancel(self._state.execution_id))
            self._cancelled = True
            return record
        finally:
            if not self._it.ag_running:  # else another task reads: the server ends it
                await self._it.aclose()

    async def final(self) -> ExecutionResult:
        """Read the rest of the stream and return the execution's result."""
        async for _ in self._it:
            pass
        return self._final()

    result = final

    async def _run(self) -> AsyncIterator[StreamEvent]:
        self._opened = True
        events = self._events()
        try:
            async for event in events:
                if self._state.execution_id:
                    self._known.set()
                yield event
        finally:
            self._known.set()
            await events.aclose()

    async def _events(self) -> AsyncIterator[StreamEvent]:
        req, state, policy = self._req, self._state, self._config.retry
        method, path, params, body = req.method, req.path, req.params or {}, req.json
        attempt = 0
        while True:
            headers = self._config.auth_headers()
            headers["Accept"] = "text/event-stream"
            if state.last_event_id:
                headers["Last-Event-ID"] = str(state.last_event_id)
            try:
                async with self._http.stream(
                    method,
                    path,
                    json=body,
                    params=params or None,
                    headers=headers,
                    timeout=_timeout(self._config, req),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        error: APIError = api_error(response)
                        if (
                            response.status_code in RETRY_STATUSES
                            and error.execution_id is None
                            and attempt < policy.max_retries
                        ):
                            await asyncio.sleep(policy.wait(attempt, error.retry_after))
                            attempt += 1
                            continue
                        raise error
                    parser = SSEParser()
                    async for text in response.aiter_text():
                        for message in parser.feed(text):
                            event = parse_event(message.event, message.data, message.id)
                            if _interrupted(event, state, req):
                                raise _Dropped("the runtime went away: resume from the store")
                            if event is None or not state.accept(event):
                                continue
                            yield event
                            if state.done:
                                return
                    raise _Dropped("the stream ended before its terminal event")
            except (httpx.TransportError, _Dropped) as exc:
                if self._cancelling:
                    return
                if state.execution_id is None:
                    if (
                        isinstance(exc, httpx.TransportError)
                        and never_sent(exc)
                        and (attempt < policy.max_retries)
                    ):
                        await asyncio.sleep(policy.wait(attempt))
                        attempt += 1
                        continue
                    if isinstance(exc, httpx.TransportError):
                        raise wrap_transport_error(exc) from exc
                    raise StreamError(str(exc)) from exc
                if state.failures >= req.max_resumes:
                    raise StreamError(
                        f"stream of {state.execution_id} dropped {state.failures + 1} times "
                        f"without progress: {exc!r}"
                    ) from exc
                await asyncio.sleep(policy.wait(state.failures - 1) if state.failures else 0.05)
                state.failures += 1
                state.resumes += 1
                method, path, params = _resume_request(req, state)
                body = None
