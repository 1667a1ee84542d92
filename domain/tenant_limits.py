"""A tenant's limits and the gate that admits its executions (time is passed in).

Requests per minute is a token bucket of `burst` capacity (default: the per-minute limit);
tokens per minute is a second bucket charged with an estimate at admission and settled with
the real usage afterwards; concurrency counts executions in flight. The tenant's actor owns
the one gate of its tenant, so the limits hold however many ingress replicas there are.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.errors import RateLimited
from domain.llm import estimate_tokens
from domain.ratelimit import TokenBucket

DEFAULT_COMPLETION_TOKENS = 256  # reserved for the answer when a request sets no max_tokens


class TenantLimits(BaseModel):
    """A tenant's effective limits."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int = Field(gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    max_concurrent_executions: int = Field(gt=0)
    burst: int | None = Field(default=None, gt=0)


class TenantLimitsUpdate(BaseModel):
    """What `PUT /api/v1/admin/tenants/{id}/limits` takes: the tenant's own limits; a field
    left out (or null) takes the configured default."""

    model_config = ConfigDict(extra="forbid")

    requests_per_minute: int | None = Field(default=None, gt=0, le=1_000_000_000)
    tokens_per_minute: int | None = Field(default=None, gt=0, le=1_000_000_000_000)
    max_concurrent_executions: int | None = Field(default=None, gt=0, le=1_000_000)
    burst: int | None = Field(default=None, gt=0, le=1_000_000_000)

    def own(self) -> dict[str, int]:
        return self.model_dump(exclude_none=True)


def estimated_tokens(body: dict[str, Any], definition: dict[str, Any]) -> int:
    """Tokens an execution is expected to use: its input now, and its answer's ceiling."""
    context = body.get("context")
    text = body.get("prompt", "") + (definition.get("system_prompt") or "")
    text += json.dumps(context) if context else ""
    answer = (body.get("parameters") or {}).get("max_tokens") or (
        definition.get("parameters") or {}
    ).get("max_tokens")
    return estimate_tokens(text) + int(answer or DEFAULT_COMPLETION_TOKENS)


class LimitGate:
    """Admission for one tenant: rate buckets and the count of executions in flight."""

    def __init__(self, limits: TenantLimits, now: float) -> None:
        self.limits = limits
        self.requests = TokenBucket.per_minute(limits.requests_per_minute, now, limits.burst)
        self.tokens = (
            TokenBucket.per_minute(limits.tokens_per_minute, now)
            if limits.tokens_per_minute
            else None
        )
        self.running = 0

    def reconfigure(self, limits: TenantLimits, now: float) -> None:
        """New limits; what was already spent stays spent (capped at the new capacity)."""
        fresh = LimitGate(limits, now)
        fresh.requests.tokens = min(fresh.requests.capacity, self.requests.level(now))
        if fresh.tokens is not None and self.tokens is not None:
            fresh.tokens.tokens = min(fresh.tokens.capacity, self.tokens.level(now))
        self.limits, self.requests, self.tokens = limits, fresh.requests, fresh.tokens

    def admit(self, now: float, estimate: int) -> int:
        """Let one execution in and reserve `estimate` tokens (the amount reserved), or raise
        RateLimited naming the limit, with when to retry and the headers' figures."""
        limits = self.limits
        if self.running >= limits.max_concurrent_executions:
            self._refuse(
                "max_concurrent_executions",
                f"tenant is at its limit of {limits.max_concurrent_executions} "
                "concurrent executions",
                1.0,
                now,
            )
        reserve = min(estimate, int(self.tokens.capacity)) if self.tokens is not None else 0
        if self.tokens is not None and self.tokens.level(now) < reserve:
            wait = (reserve - self.tokens.level(now)) / self.tokens.rate_per_s
            self._refuse("tokens_per_minute", "tenant is over its tokens-per-minute limit",
                         wait, now)  # fmt: skip
        wait = self.requests.take(now)
        if wait:
            self._refuse("requests_per_minute", "tenant is over its requests-per-minute limit",
                         wait, now)  # fmt: skip
        if self.tokens is not None:
            self.tokens.charge(reserve, now)
        self.running += 1
        return reserve

    def settle(self, now: float, reserved: int, used: int | None) -> None:
        """An execution ended: give back what it reserved and charge what it really used."""
        self.running -= 1
        if self.tokens is not None:
            self.tokens.charge((used if used is not None else 0) - reserved, now)

    def headers(self, now: float) -> dict[str, str]:
        """`X-RateLimit-*` for a response: requests per minute, and tokens when limited."""
        out = {
            "X-RateLimit-Limit": str(self.limits.requests_per_minute),
            "X-RateLimit-Remaining": str(max(0, math.floor(self.requests.level(now)))),
            "X-RateLimit-Reset": str(math.ceil(self.requests.seconds_to_full(now))),
        }
        if self.tokens is not None:
            out["X-RateLimit-Limit-Tokens"] = str(self.limits.tokens_per_minute)
            out["X-RateLimit-Remaining-Tokens"] = str(max(0, math.floor(self.tokens.level(now))))
        return out

    def as_api(self, now: float) -> dict[str, Any]:
        return {
            **self.limits.model_dump(),
            "running": self.running,
            "remaining_requests": max(0, math.floor(self.requests.level(now))),
            "remaining_tokens": (
                max(0, math.floor(self.tokens.level(now))) if self.tokens is not None else None
            ),
        }

    def _refuse(self, limit: str, message: str, wait: float, now: float) -> None:
        raise RateLimited(
            message,
            retry_after=round(wait, 3),
            details={"limit": limit, "headers": self.headers(now)},
        )
