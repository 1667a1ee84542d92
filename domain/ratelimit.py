"""Token-bucket arithmetic for requests-per-minute limits (time is passed in, never read)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """`capacity` tokens refilled at `rate_per_s`; `take` answers how long to wait."""

    capacity: float
    rate_per_s: float
    tokens: float
    updated_at: float

    @classmethod
    def per_minute(cls, limit: int, now: float, burst: float | None = None) -> TokenBucket:
        capacity = float(burst if burst is not None else limit)
        return cls(capacity=capacity, rate_per_s=limit / 60.0, tokens=capacity, updated_at=now)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated_at)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate_per_s)
        self.updated_at = now

    def take(self, now: float, amount: float = 1.0) -> float:
        """Take `amount` if available and return 0, else return seconds until it will be."""
        self._refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate_per_s

    def level(self, now: float) -> float:
        """Tokens available now (negative after a charge beyond what was there)."""
        self._refill(now)
        return self.tokens

    def charge(self, amount: float, now: float) -> None:
        """Take `amount` whether or not it is there (a negative amount gives back, up to the
        capacity): settling a reservation with what was really used."""
        self._refill(now)
        self.tokens = min(self.capacity, self.tokens - amount)

    def seconds_to_full(self, now: float) -> float:
        self._refill(now)
        return max(0.0, (self.capacity - self.tokens) / self.rate_per_s)
