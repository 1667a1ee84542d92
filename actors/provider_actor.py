"""ProviderActor: one per provider endpoint; grants permits, keeps its breaker and
statistics, and probes the endpoint when the configuration asks for active health checks."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

import ray

from actors import config_actor, heap, metrics, names
from actors.http_client import shared_client
from actors.log_setup import configure_logging
from actors.provider_check import probe
from actors.replies import replies, unwrap
from actors.settings import Settings, provider_api_key
from domain.breaker import CircuitBreaker
from domain.config import ProviderSpec, endpoint_data
from domain.errors import CircuitOpen, ProviderRateLimited
from domain.prometheus import Recorder
from domain.provider_health import HealthWindow, ModelRecord
from domain.provider_probe import CHECK_MODEL
from domain.ratelimit import TokenBucket

VIEW_TTL_S = 0.5
PROBE_IDLE_S = 5.0  # how often a provider without active probes looks whether it has them
log = logging.getLogger(__name__)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
# an attempt's outcome as a lease reports it: ok, latency ms, error type, retry-after, model
Outcome = tuple[bool, float, str | None, float | None, str]


@ray.remote
class ProviderActor:
    """Holds the provider's rate-limit state; the HTTP call itself runs in the tenant actor."""

    def __init__(self, settings: Settings, provider: str) -> None:
        # `provider` is the endpoint's key: the provider's name, or `provider:endpoint`
        configure_logging(settings, "provider", provider=provider)
        # defaults until the first call reads the config actor's settings (`_configured`)
        spec = ProviderSpec(type="openai", base_url="")
        self.settings = settings
        self.provider = provider
        self.spec = spec
        self.configured = False
        now = time.monotonic()
        self.bucket = TokenBucket.per_minute(spec.requests_per_minute, now)
        self.slots = asyncio.Semaphore(spec.max_concurrency)
        self.breaker = CircuitBreaker(spec.breaker_failure_threshold, spec.breaker_reset_s)
        self.withheld = 0
        self.incarnation = uuid.uuid4().hex  # a lease returns only slots granted by this one
        self.reconfigure(spec.model_dump())
        self.blocked_until = 0.0
        self.outstanding = 0
        self.requests = 0
        self.failures = 0
        self.latency_ewma_ms: float | None = None
        self.window = HealthWindow()
        self.models: dict[str, ModelRecord] = {}
        self.model_stats: dict[str, dict[str, Any]] = {}
        self.view_at = 0.0
        self.probes: asyncio.Task[None] | None = None
        metrics.start(settings, f"provider-{provider}")
        metrics.watch("provider", self._gauges)
        heap.settle(collect=False)  # started on a tenant's first call: no full collection then

    def _gauges(self, rec: Recorder) -> None:
        rec.set("cb_provider_permits_in_use", self.outstanding, (self.provider,))
        state = BREAKER_STATES.get(self.breaker.state, 0)
        rec.set("cb_provider_breaker_state", state, (self.provider,))

    def reconfigure(self, spec: dict[str, Any]) -> None:
        """Adopt changed settings: request rate, concurrency, breaker thresholds."""
        new = ProviderSpec.model_validate(spec)
        old, self.spec = self.spec, new
        if new.requests_per_minute != old.requests_per_minute:
            self.bucket = TokenBucket.per_minute(new.requests_per_minute, time.monotonic())
        # fewer slots: returned ones are withheld until the difference is made up
        self.withheld += old.max_concurrency - new.max_concurrency
        while self.withheld < 0:
            self.slots.release()
            self.withheld += 1
        b = self.breaker
        b.failure_threshold, b.reset_after_s = new.breaker_failure_threshold, new.breaker_reset_s
        b.failure_rate, b.min_samples = new.breaker_failure_rate, new.breaker_min_samples
        b.window_s = new.breaker_window_s

    async def _configure(self) -> None:
        if not self.configured:
            self.configured = True
            snapshot = unwrap(await config_actor.handle(self.settings).snapshot.remote(None))
            found = endpoint_data(snapshot["data"]["providers"], self.provider)
            if found is not None:
                self.reconfigure(found)
        if self.probes is None or self.probes.done():
            self.probes = asyncio.get_running_loop().create_task(self._probe_while_alive())

    async def start(self) -> None:
        """Read the configuration and begin active probes if it asks for them (the ingress
        calls this at start, so a dead endpoint is found before any request)."""
        await self._configure()

    async def _probe_while_alive(self) -> None:
        while True:
            interval = self.spec.probe_interval_s
            await asyncio.sleep(interval or PROBE_IDLE_S)
            if interval:
                try:
                    await self.probe_once()
                except Exception as exc:  # the next round tries again
                    log.warning("probe of %s failed to run: %r", self.provider, exc)

    async def probe_once(self) -> bool | None:
        """One active probe, folded into the breaker and health like an attempt's outcome:
        True or False as it went, None if not sent (the breaker is open and cooling down,
        or a request holds its half-open probe)."""
        now = time.monotonic()
        state = self.breaker.current(now)
        if state == "open" or (state == "half_open" and not self.breaker.allows(now)):
            return None
        latency_ms, error, retry_after = await probe(
            shared_client(), self.spec, provider_api_key(self.spec), self.provider
        )
        kind = error.type if error else None
        self.settle(0, [(error is None, latency_ms, kind, retry_after, CHECK_MODEL)])
        return error is None

    @replies
    async def lease(
        self,
        want: int,
        timeout_s: float = 30.0,
        returned: int = 0,
        outcomes: Sequence[Outcome] = (),
        incarnation: str | None = None,
        view: bool = False,
    ) -> dict[str, Any]:
        """Settle what the caller sends back (see `settle`), then grant up to `want` credits
        (a request token and a concurrency slot each): `credits`, whether the provider is
        `roomy` (its breaker closed and at least half its slots free after the grant: its
        leases may settle lazily and take spares), this actor's `incarnation`, and with
        `view` its routing view (as `routing_view` gives it), saving the caller that call.

        Waits for the first one up to `timeout_s`; the rest only if free right now. While
        the breaker is half-open a single probe credit is granted.
        """
        if returned or outcomes:
            self.settle(returned, outcomes, incarnation)
        await self._configure()
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            wait = max(self.blocked_until - now, 0.0) or self.bucket.take(now)
            if not wait:
                break
            if now + wait > deadline:
                raise ProviderRateLimited(
                    f"provider {self.provider} is at its request limit", retry_after=wait
                )
            await asyncio.sleep(wait)
        if not self.breaker.allows(time.monotonic()):
            raise CircuitOpen(f"provider {self.provider} circuit is open")
        try:
            await asyncio.wait_for(self.slots.acquire(), max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            raise ProviderRateLimited(
                f"provider {self.provider} is at its concurrency limit"
            ) from None
        granted = 1
        while (
            granted < want
            and self.breaker.state == "closed"
            and not self.slots.locked()
            and self.bucket.take(time.monotonic()) == 0
        ):
            await self.slots.acquire()  # free right now: returns without waiting
            granted += 1
        self.outstanding += granted
        capacity = self.spec.max_concurrency
        free = capacity - self.outstanding - self.withheld
        roomy = self.breaker.state == "closed" and 2 * free >= capacity
        grant = {"credits": granted, "roomy": roomy, "incarnation": self.incarnation}
        if view:
            grant["view"] = self._view()
        return grant

    def settle(
        self, returned: int, outcomes: Sequence[Outcome], incarnation: str | None = None
    ) -> None:
        """Take back spent or unused credits and fold attempt outcomes into the breaker.
        Credits granted by another incarnation (`incarnation`, when given, differs: this
        actor was started again since) are not taken back: this one never granted them."""
        if incarnation is not None and incarnation != self.incarnation:
            returned = 0
        for _ in range(min(returned, self.outstanding)):
            if self.withheld:
                self.withheld -= 1
            else:
                self.slots.release()
        self.outstanding = max(0, self.outstanding - returned)
        now = time.monotonic()
        wall = time.time()
        for ok, latency_ms, error_type, retry_after, model in outcomes:
            self.requests += 1
            # a provider that says "slow down" is healthy; only outages trip the breaker
            healthy = ok or error_type == "provider_rate_limited"
            self.breaker.record(healthy, now)
            if ok:
                prev = self.latency_ewma_ms
                self.latency_ewma_ms = (
                    latency_ms if prev is None else prev + 0.2 * (latency_ms - prev)
                )
            else:
                self.failures += 1
            self.window.record(healthy, wall, error_type)
            self.models.setdefault(model, ModelRecord()).record(
                ok, latency_ms, wall, None if healthy else error_type
            )
            if retry_after:
                self.blocked_until = max(self.blocked_until, now + retry_after)

    @replies
    async def routing_view(self) -> dict[str, Any]:
        """What routing needs: the breaker's state and each model's latency and error rate.

        An active tenant actor has it about once a second, mostly on its lease calls; the
        model statistics are computed at most every `VIEW_TTL_S` (the breaker's state is
        always current).
        """
        await self._configure()
        return self._view()

    def _view(self) -> dict[str, Any]:
        now = time.monotonic()
        if now - self.view_at > VIEW_TTL_S:
            wall = time.time()
            self.model_stats = {n: r.snapshot(wall) for n, r in self.models.items()}
            self.view_at = now
        return {"breaker": self.breaker.current(now), "models": self.model_stats}

    @replies
    async def health(self) -> dict[str, Any]:
        """The provider's state as operators and the legacy `healthStatus` read it."""
        await self._configure()
        now = time.time()
        return {
            "provider": self.provider,
            "healthy": self.window.healthy(self.breaker.state, now),
            "breaker": self.breaker.current(time.monotonic()),
            "breaker_opened_because": self.breaker.opened_because,
            "consecutive_failures": self.breaker.consecutive_failures,
            "error_rate": self.window.error_rate(now),
            "requests": self.requests,
            "failures": self.failures,
            "average_latency_ms": round(self.latency_ewma_ms or 0.0, 3),
            "outstanding_credits": self.outstanding,
            "last_error": self.window.last_error,
            "last_check": self.window.last_check,
        }


def handle(settings: Settings, provider: str) -> Any:
    """The provider's actor, started if none runs."""
    return names.get_or_create(
        names.provider_actor_name(settings, provider), ProviderActor, settings, provider
    )
