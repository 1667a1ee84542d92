"""A provider's recent record: error rate over a window, latency, the last failure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

WINDOW_S = 300.0
MAX_OUTCOMES = 500
UNHEALTHY_ERROR_RATE = 0.5
MIN_SAMPLES = 10  # fewer recent outcomes than this say too little to call a provider unhealthy


@dataclass
class HealthWindow:
    """Outcomes of the last `WINDOW_S` seconds (at most `MAX_OUTCOMES`), by wall-clock time."""

    outcomes: deque[tuple[float, bool]] = field(default_factory=lambda: deque(maxlen=MAX_OUTCOMES))
    last_error: str | None = None
    last_check: float | None = None

    def record(self, ok: bool, at: float, error_type: str | None = None) -> None:
        self.outcomes.append((at, ok))
        self.last_check = at
        if not ok:
            self.last_error = error_type

    def error_rate(self, now: float) -> float:
        recent = [ok for at, ok in self.outcomes if now - at <= WINDOW_S]
        return round(recent.count(False) / len(recent), 4) if recent else 0.0

    def healthy(self, breaker_state: str, now: float) -> bool:
        """Breaker closed, and under half the recent outcomes failed (given enough of them)."""
        if breaker_state != "closed":
            return False
        recent = sum(1 for at, _ in self.outcomes if now - at <= WINDOW_S)
        return recent < MIN_SAMPLES or self.error_rate(now) < UNHEALTHY_ERROR_RATE


@dataclass
class ModelRecord:
    """One model's observed latency (moving average of successes) and recent outcomes."""

    window: HealthWindow = field(default_factory=HealthWindow)
    latency_ms: float | None = None
    samples: int = 0

    def record(self, ok: bool, latency_ms: float, at: float, error_type: str | None) -> None:
        self.window.record(ok, at, error_type)
        self.samples += 1
        if ok:
            prev = self.latency_ms
            self.latency_ms = latency_ms if prev is None else prev + 0.3 * (latency_ms - prev)

    def snapshot(self, now: float) -> dict[str, float | int | None]:
        return {
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 3),
            "error_rate": self.window.error_rate(now),
            "samples": self.samples,
        }


def combined_health(endpoints: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """A provider's health from its endpoints' (name, health) pairs: healthy while one is,
    the best breaker state, counts summed, rates and latency weighted by requests; each
    endpoint's own under `endpoints`."""
    states = [h["breaker"] for _, h in endpoints]
    breaker = next((s for s in ("closed", "half_open") if s in states), "open")
    requests = sum(h["requests"] for _, h in endpoints)
    answered = [(h["average_latency_ms"], h["requests"]) for _, h in endpoints if h["requests"]]
    checks = [h["last_check"] for _, h in endpoints if h["last_check"] is not None]
    return {
        "healthy": any(h["healthy"] for _, h in endpoints),
        "breaker": breaker,
        "breaker_opened_because": next(
            (h["breaker_opened_because"] for _, h in endpoints if h["breaker"] == breaker), None
        ),
        "consecutive_failures": min(h["consecutive_failures"] for _, h in endpoints),
        "error_rate": round(
            sum(h["error_rate"] * h["requests"] for _, h in endpoints) / requests, 4
        )
        if requests
        else 0.0,
        "requests": requests,
        "failures": sum(h["failures"] for _, h in endpoints),
        "average_latency_ms": round(sum(ms * n for ms, n in answered) / requests, 3)
        if requests
        else 0.0,
        "outstanding_credits": sum(h["outstanding_credits"] for _, h in endpoints),
        "last_error": next((h["last_error"] for _, h in endpoints if h["last_error"]), None),
        "last_check": max(checks) if checks else None,
        "endpoints": [{"endpoint": name, **h} for name, h in endpoints],
    }
