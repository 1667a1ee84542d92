"""Retry timing: exponential backoff with jitter, honouring the provider's Retry-After."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms` (OpenAI, Anthropic) or
    `retry-after` in seconds; None when absent or unreadable (HTTP dates are not used)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if seconds >= 0:
            return seconds
    return None


def backoff_s(
    attempt: int,
    base_s: float,
    retry_after: float | None,
    cap_s: float,
    jitter: Callable[[], float] = random.random,
) -> float:
    """Wait before retry `attempt + 1`: base × 2^attempt with ±25 % jitter (so retries of
    many executions do not arrive together); at least the provider's Retry-After, capped."""
    wait = base_s * (2**attempt) * (0.75 + 0.5 * jitter())
    if retry_after is not None:
        wait = max(wait, retry_after)
    return min(wait, cap_s)
