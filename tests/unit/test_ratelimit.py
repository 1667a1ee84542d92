"""The token bucket (`domain/ratelimit.py`), with time passed in."""

from __future__ import annotations

import pytest

from domain.ratelimit import TokenBucket


def test_token_bucket_waits_for_refill() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0, burst=2)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(1.0) == 0
