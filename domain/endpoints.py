"""The order one attempt tries a provider's endpoints in: the first by the provider's
`balance` (smooth weighted round robin, or the least busy by weight), then the others by
weight; endpoints whose breaker is known open are left out while another remains."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from domain.config import Endpoint


class Balancer:
    """One per caller: keeps the smooth weighted round robin's running scores, so over
    every `sum(weights)` picks each endpoint gets exactly its weight's share."""

    def __init__(self) -> None:
        self.scores: dict[str, float] = {}

    def order(
        self,
        endpoints: Sequence[Endpoint],
        balance: str,
        in_flight: Mapping[str, int],
        open_keys: Collection[str] = (),
    ) -> list[Endpoint]:
        """Every endpoint to try, first pick first (all of them if every one is open)."""
        live = [e for e in endpoints if e.key not in open_keys] or list(endpoints)
        if len(live) == 1:
            return live
        pool = live
        if balance == "least_busy":
            least = min(in_flight.get(e.key, 0) / e.weight for e in live)
            pool = [e for e in live if in_flight.get(e.key, 0) / e.weight == least]
        first = self._pick(pool)
        rest = sorted((e for e in live if e is not first), key=lambda e: -e.weight)
        return [first, *rest]

    def _pick(self, pool: Sequence[Endpoint]) -> Endpoint:
        if len(pool) == 1:
            return pool[0]
        total = 0.0
        best: Endpoint | None = None
        for e in pool:
            score = self.scores.get(e.key, 0.0) + e.weight
            self.scores[e.key] = score
            total += e.weight
            if best is None or score > self.scores[best.key]:
                best = e
        assert best is not None
        self.scores[best.key] -= total
        return best
