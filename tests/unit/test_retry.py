"""Retry waits (`domain/retry.py`)."""

from __future__ import annotations

from domain import retry


def test_retry_waits_grow_with_jitter_and_honour_retry_after() -> None:
    assert retry.retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry.retry_after_s({"retry-after": "2"}) == 2.0
    assert retry.retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry.backoff_s(0, 0.25, None, 20, jitter=lambda: 0.0) == 0.1875
    assert retry.backoff_s(2, 0.25, None, 20, jitter=lambda: 1.0) == 1.25
    assert retry.backoff_s(0, 0.25, 3.0, 20, jitter=lambda: 0.5) == 3.0
    assert retry.backoff_s(0, 0.25, 300.0, 20, jitter=lambda: 0.5) == 20
