"""This replica's admission of executions: fair, bounded waiting for a slot (overload gives
503 with Retry-After), a bound on the streams it keeps open, and refusals of a tenant over
its request rate answered from memory.

A tenant actor's requests-per-minute refusal says when a request can next be admitted; until
then the replica refuses that tenant's executions itself, without a call to the actor (and,
for a credential already refused, before any parsing), so a tenant hammering past its limit
costs the replica little and other tenants little.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from actors.metrics import RECORDER
from api.request_metrics import OPEN_STREAMS, note_error
from api.responses import door_path, error_response
from domain.admission import AdaptiveLimit, FairQueue, retry_after_s
from domain.config import IngressLimits
from domain.errors import CBError, Overloaded, RateLimited

PROBE_S = 0.05  # how often the event loop's lag is sampled
SERVICE_EWMA = 0.1  # weight of the newest slot hold time in the running estimate
MAX_REMEMBERED = 10_000
STREAM_RETRY_AFTER_S = 1.0  # a refused stream's Retry-After: open streams end unpredictably
EXECUTION_PATHS = ("/execute", "/execute/stream", "/v1/chat/completions")
# a digest of the Authorization header of the request being served (set by RefusalShortcut)
CREDENTIAL: ContextVar[str | None] = ContextVar("cb_credential", default=None)


class Gate:
    """Slots for executions in flight; the rest wait in a FairQueue, bounded."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.queue: FairQueue[asyncio.Future[None]] = FairQueue()
        self.service_s = 0.05  # running estimate of how long a slot is held
        self.limits = IngressLimits()
        self.adaptive = AdaptiveLimit(self.limits.max_in_flight)
        self.loop_lag_s = 0.0
        self._probe: asyncio.Task[None] | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "limit": self.limit(self.limits),
            "queued": self.queue.size,
            "slot_hold_ms": round(self.service_s * 1000, 1),
            "loop_lag_ms": round(self.loop_lag_s * 1000, 1),
            "open_streams": OPEN_STREAMS[0],
        }

    def limit(self, limits: IngressLimits) -> int:
        """Executions to run at once now: the configured bound, lowered while CPU is short."""
        return min(limits.max_in_flight, int(self.adaptive.limit))

    async def _watch_the_loop(self) -> None:
        """Measure how late the event loop runs a timer; adapt the limit to it."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(PROBE_S)
            self.loop_lag_s = loop.time() - started - PROBE_S
            self.adaptive.update(self.loop_lag_s, self.in_flight, self.limits)
            self._fill(self.limits)  # a raised limit lets waiters in

    @asynccontextmanager
    async def slot(self, tenant: str, limits: IngressLimits) -> AsyncIterator[None]:
        """Hold a slot for the block; wait for one in turn, or raise Overloaded."""
        self.limits = limits
        if self._probe is None or self._probe.done():
            self._probe = asyncio.get_running_loop().create_task(self._watch_the_loop())
        if self.in_flight < self.limit(limits) and not self.queue.size:
            self.in_flight += 1
        else:
            await self._wait(tenant, limits)
        started = time.monotonic()
        try:
            yield
        finally:
            held = time.monotonic() - started
            self.service_s += SERVICE_EWMA * (held - self.service_s)
            self.in_flight -= 1
            self._fill(limits)

    async def _wait(self, tenant: str, limits: IngressLimits) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        wait = retry_after_s(self.queue.size, self.limit(limits), self.service_s)
        self.queue.push(tenant, waiter, limits, wait)
        self._fill(limits)  # room may have been made (a raised limit)
        try:
            async with asyncio.timeout(limits.max_queue_wait_s):
                await waiter
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.done() and not waiter.cancelled():  # granted as the wait ended
                self.in_flight -= 1
                self._fill(limits)
            else:
                self.queue.remove(tenant, waiter)
            if isinstance(exc, TimeoutError):
                raise Overloaded(
                    f"no capacity within {limits.max_queue_wait_s:g} s; retry later",
                    retry_after=retry_after_s(self.queue.size, self.limit(limits), self.service_s),
                    details={"limit": "max_queue_wait_s"},
                ) from None
            raise

    def _fill(self, limits: IngressLimits) -> None:
        while self.in_flight < self.limit(limits):
            waiter = self.queue.pop()
            if waiter is None:
                return
            if not waiter.done():  # a cancelled waiter gives its turn away
                waiter.set_result(None)
                self.in_flight += 1


class Refusals:
    """Tenants refused for their request rate, until when, and the credentials refused."""

    def __init__(self) -> None:
        self._until: dict[str, tuple[float, float, RateLimited, set[str]]] = {}

    def check(self, tenant: str) -> None:
        """Raise the tenant's refusal again, with its figures brought up to now."""
        err = self.held(tenant)
        if err is not None:
            raise err

    def held(self, tenant: str, credential: str | None = None) -> RateLimited | None:
        """The tenant's refusal as of now; with `credential`, only if that one was refused."""
        held = self._until.get(tenant)
        if held is None:
            return None
        noted, until, err, credentials = held
        now = time.monotonic()
        if now >= until:
            del self._until[tenant]
            return None
        if credential is not None and credential not in credentials:
            return None
        details = dict(err.details) if isinstance(err.details, dict) else {}
        headers = dict(details.get("headers") or {})
        if "X-RateLimit-Reset" in headers:
            left = int(headers["X-RateLimit-Reset"]) - math.floor(now - noted)
            headers["X-RateLimit-Reset"] = str(max(0, left))
        headers["X-RateLimit-Remaining"] = "0"
        return RateLimited(err.message, retry_after=until - now, details={**details,
                           "headers": headers})  # fmt: skip

    def note(self, tenant: str, err: CBError) -> None:
        """Remember a requests-per-minute refusal until its Retry-After, with the credential
        of the request refused (see RefusalShortcut)."""
        limit = err.details.get("limit") if isinstance(err.details, dict) else None
        if not isinstance(err, RateLimited) or limit != "requests_per_minute":
            return  # concurrency and token refusals can clear before their estimate
        if not err.retry_after:
            return
        now = time.monotonic()
        if len(self._until) >= MAX_REMEMBERED:
            self._until = {t: h for t, h in self._until.items() if h[1] > now}
        before = self._until.get(tenant)
        credentials = before[3] if before is not None and before[1] > now else set()
        credential = CREDENTIAL.get()
        if credential is not None:
            credentials.add(credential)
        self._until[tenant] = (now, now + err.retry_after, err, credentials)

    def forget(self, tenant: str) -> None:
        """The tenant's limits changed: ask its actor again."""
        self._until.pop(tenant, None)


class RefusalShortcut:
    """ASGI: an execution request from a tenant this replica holds a rate refusal for, with
    a credential that was refused, is answered 429 before routing, parsing or auth.

    Only a credential the full path authenticated for that tenant is ever remembered, so the
    answer tells nothing to anyone who does not hold it.
    """

    def __init__(self, app: ASGIApp, refusals: Refusals) -> None:
        self.app = app
        self.refusals = refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.endswith(EXECUTION_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        tenant = headers.get(b"x-tenant-id", b"").decode("latin-1")
        credential = hashlib.sha256(headers.get(b"authorization", b"")).hexdigest()
        err = self.refusals.held(tenant, credential)
        if err is not None:
            note_error(scope, err)
            await error_response(err, door_path(scope))(scope, receive, send)
            return
        token = CREDENTIAL.set(credential)
        try:
            await self.app(scope, receive, send)
        finally:
            CREDENTIAL.reset(token)


class Admission:
    """One replica's admission: its execution slots and the rate refusals it remembers."""

    def __init__(self) -> None:
        self.gate = Gate()
        self.refusals = Refusals()

    def stream_room(self, limits: IngressLimits) -> None:
        """Refuse a new stream (503 `overloaded`) while this replica has `max_open_streams`
        open: beyond them a request would wait in Serve's own queue, unbounded."""
        if OPEN_STREAMS[0] >= limits.max_open_streams:
            raise Overloaded(
                f"this replica has {limits.max_open_streams} streams open; retry later",
                retry_after=STREAM_RETRY_AFTER_S,
                details={"limit": "max_open_streams"},
            )

    @asynccontextmanager
    async def admitted(
        self, tenant: str, limits: IngressLimits, stream: bool = False
    ) -> AsyncIterator[None]:
        """An execution's way in: a remembered refusal, else (for a stream, with room for
        one more open) a slot; refusals are remembered."""
        self.refusals.check(tenant)
        if stream:
            self.stream_room(limits)
        async with self.gate.slot(tenant, limits):
            try:
                yield
            except RateLimited as err:
                self.refusals.note(tenant, err)
                raise


async def admission_of(request: Request) -> Admission:
    """The admission of the app serving `request` (kept on `app.state.admission`).

    Async: FastAPI runs a plain-function dependency in a worker thread, on every request.
    """
    return request.app.state.admission


Admitting = Annotated[Admission, Depends(admission_of)]


def watch_ingress(admission: Admission) -> None:
    """Report this replica's admission state and open streams with every metrics report."""

    def collect(rec: Any) -> None:
        gate = admission.gate
        rec.set("cb_ingress_in_flight", gate.in_flight)
        rec.set("cb_ingress_queued", gate.queue.size)
        rec.set("cb_ingress_limit", gate.limit(gate.limits))
        rec.set("cb_streams_open", OPEN_STREAMS[0])

    RECORDER.collectors["ingress"] = collect
