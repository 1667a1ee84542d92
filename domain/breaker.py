"""A per-provider circuit breaker: closed → open → half-open probe → closed.

It opens after `failure_threshold` consecutive failures, or when at least `min_samples`
outcomes of the last `window_s` seconds failed at a rate of `failure_rate` or more.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

MAX_WINDOW_OUTCOMES = 1000


@dataclass
class CircuitBreaker:
    failure_threshold: int
    reset_after_s: float
    failure_rate: float = 0.5
    min_samples: int = 20
    window_s: float = 60.0
    state: str = "closed"
    consecutive_failures: int = 0
    opened_at: float = 0.0
    probe_in_flight: bool = False
    opened_because: str | None = None
    recent: deque[tuple[float, bool]] = field(
        default_factory=lambda: deque(maxlen=MAX_WINDOW_OUTCOMES)
    )

    def current(self, now: float) -> str:
        """The state now: an open breaker whose cooldown is over is half-open."""
        if self.state == "open" and now - self.opened_at >= self.reset_after_s:
            self.state = "half_open"
            self.probe_in_flight = False
        return self.state

    def allows(self, now: float) -> bool:
        """Whether an attempt may start now (one probe at a time while half-open)."""
        if self.current(now) == "closed":
            return True
        if self.state == "half_open" and not self.probe_in_flight:
            self.probe_in_flight = True
            return True
        return False

    def record(self, ok: bool, now: float) -> None:
        """Fold an attempt's outcome into the state."""
        if ok:
            if self.state == "open":
                return  # an attempt started before it opened; only a probe closes it
            if self.state == "half_open":
                self.recent.clear()  # the probe passed: a fresh window
            self.state, self.consecutive_failures, self.probe_in_flight = "closed", 0, False
            self.opened_because = None
            self.recent.append((now, True))
            return
        self.consecutive_failures += 1
        self.recent.append((now, False))
        if self.state == "half_open":
            self._open(now, "probe failed")
        elif self.consecutive_failures >= self.failure_threshold:
            self._open(now, f"{self.consecutive_failures} consecutive failures")
        elif self.state == "closed" and (rate := self.window_failure_rate(now)) is not None:
            if rate >= self.failure_rate:
                self._open(now, f"failure rate {rate:.0%} over {self.window_s:g} s")

    def window_failure_rate(self, now: float) -> float | None:
        """The failure rate over the window, or None with fewer than `min_samples` outcomes."""
        while self.recent and now - self.recent[0][0] > self.window_s:
            self.recent.popleft()
        if len(self.recent) < self.min_samples:
            return None
        return sum(1 for _, ok in self.recent if not ok) / len(self.recent)

    def _open(self, now: float, because: str) -> None:
        self.state, self.opened_at, self.probe_in_flight = "open", now, False
        self.opened_because = because
