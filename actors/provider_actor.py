"""ProviderActor: one per provider; grants permits and keeps its breaker and statistics."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import ray

from actors.settings import Settings
from domain.breaker import CircuitBreaker
from domain.errors import CircuitOpen, ProviderRateLimited
from domain.ratelimit import TokenBucket


@ray.remote
class ProviderActor:
    """Holds the provider's rate-limit state; the HTTP call itself runs in the tenant actor."""

    def __init__(self, settings: Settings, provider: str) -> None:
        spec = settings.load_catalog().providers[provider]
        self.provider = provider
        self.spec = spec
        now = time.monotonic()
        self.bucket = TokenBucket.per_minute(spec.requests_per_minute, now)
        self.slots = asyncio.Semaphore(spec.max_concurrency)
        self.breaker = CircuitBreaker(spec.breaker_failure_threshold, spec.breaker_reset_s)
        self.blocked_until = 0.0
        self._ids = itertools.count(1)
        self.in_flight: set[int] = set()
        self.requests = 0
        self.failures = 0
        self.latency_ewma_ms: float | None = None
        self.last_error: str | None = None

    async def acquire(self, timeout_s: float = 30.0) -> dict[str, Any]:
        """A permit for one attempt, or a typed refusal (circuit open, rate-limited)."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            wait = max(self.blocked_until - now, 0.0) or self.bucket.take(now)
            if not wait:
                break
            if now + wait > deadline:
                err = ProviderRateLimited(
                    f"provider {self.provider} is at its request limit", retry_after=wait
                )
                return {"error": err.to_dict()}
            await asyncio.sleep(wait)
        if not self.breaker.allows(time.monotonic()):
            return {"error": CircuitOpen(f"provider {self.provider} circuit is open").to_dict()}
        try:
            await asyncio.wait_for(self.slots.acquire(), max(deadline - time.monotonic(), 0.001))
        except TimeoutError:
            err = ProviderRateLimited(f"provider {self.provider} is at its concurrency limit")
            return {"error": err.to_dict()}
        permit = next(self._ids)
        self.in_flight.add(permit)
        return {"permit": permit}

    def release(
        self,
        permit: int,
        ok: bool,
        latency_ms: float,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Fold an attempt's outcome into the breaker and statistics; free its slot."""
        if permit in self.in_flight:
            self.in_flight.discard(permit)
            self.slots.release()
        now = time.monotonic()
        self.requests += 1
        # a provider that says "slow down" is healthy; only outages trip the breaker
        self.breaker.record(ok or error_type == "provider_rate_limited", now)
        if ok:
            alpha = 0.2
            prev = self.latency_ewma_ms
            self.latency_ewma_ms = (
                latency_ms if prev is None else prev + alpha * (latency_ms - prev)
            )
        else:
            self.failures += 1
            self.last_error = error_type
        if retry_after:
            self.blocked_until = max(self.blocked_until, now + retry_after)

    def health(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "breaker": self.breaker.state,
            "consecutive_failures": self.breaker.consecutive_failures,
            "requests": self.requests,
            "failures": self.failures,
            "average_latency_ms": self.latency_ewma_ms,
            "in_flight": len(self.in_flight),
            "last_error": self.last_error,
        }
