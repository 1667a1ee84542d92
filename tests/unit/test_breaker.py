"""The circuit breaker (`domain/breaker.py`), with time passed in."""

from __future__ import annotations

import pytest

from domain.breaker import CircuitBreaker


def test_breaker_opens_after_threshold_and_probes_after_reset() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10)
    breaker.record(False, now=0)
    assert breaker.allows(1)
    breaker.record(False, now=1)
    assert breaker.state == "open" and not breaker.allows(5)
    assert breaker.allows(12) and breaker.state == "half_open"
    assert not breaker.allows(12)  # one probe at a time
    breaker.record(True, now=13)
    assert breaker.state == "closed"


def test_breaker_opens_on_failure_rate_without_a_failure_streak() -> None:
    breaker = CircuitBreaker(failure_threshold=5, reset_after_s=10, min_samples=10, window_s=60)
    for i in range(9):  # alternate: never two failures in a row, a 44 % rate at most
        breaker.record(i % 2 == 0, now=float(i))
    assert breaker.state == "closed" and breaker.window_failure_rate(9.0) is None
    breaker.record(False, now=9.0)  # ten samples, half failed
    assert breaker.state == "open"
    assert breaker.opened_because == "failure rate 50% over 60 s"
    assert breaker.allows(20.0) and breaker.state == "half_open"
    breaker.record(True, now=20.0)  # the probe passed: a fresh window, closed
    assert breaker.state == "closed" and breaker.window_failure_rate(20.0) is None


def test_breaker_forgets_failures_older_than_its_window() -> None:
    breaker = CircuitBreaker(failure_threshold=50, reset_after_s=10, min_samples=4, window_s=10)
    for t in range(4):
        breaker.record(False, now=float(t))
        breaker.record(True, now=float(t) + 0.5)
    assert breaker.state == "open"  # 3 of 5 failed within the window
    late = CircuitBreaker(failure_threshold=50, reset_after_s=10, min_samples=4, window_s=10)
    for t in range(3):
        late.record(False, now=float(t))
    for t in range(20, 24):
        late.record(True, now=float(t))
    late.record(False, now=24.0)  # the early failures have left the window: 1 of 5
    assert late.state == "closed" and late.window_failure_rate(24.0) == pytest.approx(0.2)
