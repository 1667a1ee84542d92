"""When to retry and how long to wait: exponential backoff with jitter, at least the
server's `Retry-After`."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

RETRY_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """`max_retries` tries after the first; waits `base * 2**n` (capped at `max_wait`) with
    ±`jitter` of it, never less than a `Retry-After` (itself capped at `max_retry_after`)."""

    max_retries: int = 2
    base: float = 0.5
    max_wait: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0

    def wait(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float:
        """Seconds to sleep before retry number `attempt` (0 for the first retry)."""
        backoff = min(self.max_wait, self.base * (2**attempt))
        spread = backoff * self.jitter
        backoff += (rng or random).uniform(-spread, spread)
        if retry_after is not None:
            return max(backoff, min(retry_after, self.max_retry_after))
        return max(0.0, backoff)


def never_sent(exc: BaseException) -> bool:
    """Whether a transport error happened before the request reached the server."""
    return isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)


def retryable_status(status: int, idempotent: bool, execution_id: str | None) -> bool:
    """429 and 503 are retried; for a non-idempotent request only when nothing was recorded
    (no execution id: the server refused it at admission)."""
    if status not in RETRY_STATUSES:
        return False
    return idempotent or execution_id is None


def retryable_exception(exc: BaseException, idempotent: bool) -> bool:
    """Connection errors are retried; for a non-idempotent request only if never sent."""
    if not isinstance(exc, httpx.TransportError):
        return False
    return idempotent or never_sent(exc)
