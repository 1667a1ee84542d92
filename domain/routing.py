"""Virtual-model resolution: a requested name to an ordered chain of concrete models."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from domain.catalog import Capability, Catalog, ModelSpec
from domain.errors import ModelNotFound, NoModelAvailable


@dataclass
class Route:
    """The decision: try `chain` in order; `skipped` says why others were left out."""

    requested: str
    strategy: str
    chain: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def explain(self) -> dict[str, Any]:
        return {
            "requested": self.requested,
            "strategy": self.strategy,
            "chosen": self.chain[0],
            "fallbacks": self.chain[1:],
            "skipped": self.skipped,
        }


def _rank(strategy: str, names: list[str], models: dict[str, ModelSpec]) -> list[str]:
    if strategy == "cost_optimized":
        key = lambda n: models[n].input_price_per_mtok + models[n].output_price_per_mtok  # noqa: E731
        return sorted(names, key=key)
    if strategy == "performance":
        return sorted(names, key=lambda n: models[n].latency_prior_ms)
    return list(names)  # balanced, reliability and task_specific keep the configured order


def resolve(
    requested: str,
    catalog: Catalog,
    configured_providers: Collection[str],
    open_providers: Collection[str] = (),
    needs: Collection[Capability] = (),
) -> Route:
    """Resolve a virtual or concrete name against what is configured and healthy now."""
    virtual = catalog.virtual_models.get(requested)
    if virtual is not None:
        strategy, candidates = virtual.strategy, list(virtual.candidates)
    elif requested in catalog.models:
        strategy, candidates = "direct", [requested]
    else:
        raise ModelNotFound(f"unknown model {requested!r}; GET /api/v1/models lists them")
    chain: list[str] = []
    skipped: list[dict[str, str]] = []
    for name in candidates:
        spec = catalog.models[name]
        missing = [c for c in needs if c not in spec.capabilities]
        if spec.provider not in configured_providers:
            skipped.append({"model": name, "reason": f"provider {spec.provider} not configured"})
        elif spec.provider in open_providers:
            skipped.append({"model": name, "reason": f"provider {spec.provider} circuit open"})
        elif missing:
            skipped.append({"model": name, "reason": f"lacks {', '.join(sorted(missing))}"})
        else:
            chain.append(name)
    if not chain:
        reasons = "; ".join(f"{s['model']}: {s['reason']}" for s in skipped)
        raise NoModelAvailable(f"no model can serve {requested!r} right now ({reasons})")
    return Route(requested, strategy, _rank(strategy, chain, catalog.models), skipped)
