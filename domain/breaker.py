"""A per-provider circuit breaker: closed → open after N failures → half-open probe."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CircuitBreaker:
    failure_threshold: int
    reset_after_s: float
    state: str = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probe_in_flight: bool = False

    def allows(self, now: float) -> bool:
        """Whether an attempt may start now (one probe at a time while half-open)."""
        if self.state == "open" and now - self.opened_at >= self.reset_after_s:
            self.state = "half_open"
            self.probe_in_flight = False
        if self.state == "closed":
            return True
        if self.state == "half_open" and not self.probe_in_flight:
            self.probe_in_flight = True
            return True
        return False

    def record(self, ok: bool, now: float) -> None:
        """Fold an attempt's outcome into the state."""
        if ok:
            self.state, self.consecutive_failures, self.probe_in_flight = "closed", 0, False
            return
        self.consecutive_failures += 1
        if self.state == "half_open" or self.consecutive_failures >= self.failure_threshold:
            self.state, self.opened_at, self.probe_in_flight = "open", now, False
