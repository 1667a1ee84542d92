"""Virtual-model resolution: a requested name to an ordered chain of concrete models.

A candidate qualifies when its provider is configured and its breaker is not open, the tenant
may use it, it has every capability the request needs, and its context window holds the
estimated prompt plus `max_tokens`. Qualifying candidates are ranked by the strategy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.config import Capability, Config, ModelSpec, VirtualModel
from domain.errors import (
    CapabilityNotSupported,
    CBError,
    ContextLengthExceeded,
    ModelNotAllowed,
    ModelNotFound,
    NoModelAvailable,
)

MIN_OBSERVED = 3  # attempts before observed latency replaces the config's prior


@dataclass(frozen=True)
class ModelStats:
    """What the provider actors observed of one model lately."""

    latency_ms: float | None = None  # moving average of successful attempts
    error_rate: float = 0.0
    samples: int = 0


@dataclass(frozen=True)
class Needs:
    """What a request demands of a model."""

    capabilities: frozenset[Capability] = frozenset()
    prompt_tokens: int = 0
    max_tokens: int | None = None


NO_NEEDS = Needs()


@dataclass
class Route:
    """The decision: try `chain` in order; `skipped` says why others were left out."""

    requested: str
    strategy: str
    chain: list[str]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def explain(self) -> dict[str, Any]:
        """`metadata.routing`: every candidate, the chain first, each skip with its reason."""
        return {
            "requested": self.requested,
            "strategy": self.strategy,
            "resolved": self.chain[0],
            "fallbacks": self.chain[1:],
            "candidates": [{"model": m, "skipped": None} for m in self.chain]
            + [{"model": s["model"], "skipped": s["reason"]} for s in self.skipped],
        }


def rank(
    virtual: VirtualModel,
    names: list[str],
    models: Mapping[str, ModelSpec],
    stats: Mapping[str, ModelStats],
) -> list[str]:
    """Order qualifying candidates by the strategy (stable: ties keep the configured order)."""
    empty = ModelStats()
    if virtual.strategy == "cost_optimized":
        return sorted(
            names, key=lambda n: models[n].input_price_per_mtok + models[n].output_price_per_mtok
        )
    if virtual.strategy == "performance":
        return sorted(names, key=lambda n: latency_ms(models[n], stats.get(n, empty)))
    if virtual.strategy == "reliability":
        return sorted(names, key=lambda n: stats.get(n, empty).error_rate)
    if virtual.strategy == "task_specific" and virtual.task:
        task = virtual.task
        return sorted(names, key=lambda n: -models[n].strengths.get(task, models[n].quality))
    return list(names)  # balanced: the operator's order, minus what does not qualify


def latency_ms(model: ModelSpec, observed: ModelStats) -> float:
    """Observed latency once there are enough samples, the config's prior until then."""
    if observed.samples >= MIN_OBSERVED and observed.latency_ms is not None:
        return observed.latency_ms
    return model.latency_prior_ms


class GapKind(StrEnum):
    """Why a candidate was left out; the first four are static: no runtime change cures them."""

    CAPABILITY = "capability"  # it lacks a capability the request needs
    CONTEXT = "context"  # its context window cannot hold the prompt plus `max_tokens`
    UNKNOWN = "unknown"  # it is not in the config
    NOT_ALLOWED = "not_allowed"  # the tenant's allow-list leaves it out
    UNCONFIGURED = "unconfigured"  # its provider is not configured
    CIRCUIT_OPEN = "circuit_open"  # its provider's breaker is open


STATIC_GAPS = frozenset({GapKind.CAPABILITY, GapKind.CONTEXT, GapKind.UNKNOWN, GapKind.NOT_ALLOWED})


@dataclass(frozen=True)
class Gap:
    """Why one candidate cannot serve the request: a kind to classify by, a text to show."""

    kind: GapKind
    text: str

    @property
    def static(self) -> bool:
        """Whether no runtime change (provider configured, breaker closed) would cure it."""
        return self.kind in STATIC_GAPS


def _static_gap(spec: ModelSpec, needs: Needs) -> Gap | None:
    """Why a model can never serve this request (capability or size), or None."""
    missing = sorted(c for c in needs.capabilities if c not in spec.capabilities)
    if missing:
        return Gap(GapKind.CAPABILITY, f"lacks {', '.join(missing)}")
    wanted = needs.prompt_tokens + (needs.max_tokens or 0)
    if wanted > spec.context_window:
        return Gap(
            GapKind.CONTEXT, f"context window {spec.context_window} < {wanted} tokens needed"
        )
    return None


def _gap(
    name: str,
    spec: ModelSpec | None,
    needs: Needs,
    configured_providers: Collection[str],
    open_providers: Collection[str],
    allowed_models: Collection[str] | None,
) -> Gap | None:
    """Why candidate `name` cannot serve this request now, or None if it can."""
    if spec is None:
        return Gap(GapKind.UNKNOWN, "not in the catalog")  # the message clients have always seen
    gap = _static_gap(spec, needs)
    if gap is not None:
        return gap
    if allowed_models is not None and name not in allowed_models:
        return Gap(GapKind.NOT_ALLOWED, "not allowed for this tenant")
    if spec.provider not in configured_providers:
        return Gap(GapKind.UNCONFIGURED, f"provider {spec.provider} not configured")
    if spec.provider in open_providers:
        return Gap(GapKind.CIRCUIT_OPEN, f"provider {spec.provider} circuit open")
    return None


def _no_route(requested: str, gaps: list[tuple[str, Gap]]) -> CBError:
    """The error when every candidate has a gap: static gaps are the request's or tenant's
    fault (too long, lacks a capability, not allowed); any runtime gap means "not right now"."""
    reasons = "; ".join(f"{name}: {gap.text}" for name, gap in gaps)
    message = f"no model can serve {requested!r} ({reasons})"
    kinds = {gap.kind for _, gap in gaps}
    if not kinds <= STATIC_GAPS:
        return NoModelAvailable(message + " right now")
    if kinds == {GapKind.CONTEXT}:
        return ContextLengthExceeded(message)
    if kinds <= {GapKind.CAPABILITY, GapKind.CONTEXT}:
        return CapabilityNotSupported(message)
    return ModelNotAllowed(message)


def resolve(
    requested: str,
    config: Config,
    configured_providers: Collection[str],
    open_providers: Collection[str] = (),
    needs: Needs = NO_NEEDS,
    stats: Mapping[str, ModelStats] | None = None,
    virtual_models: Mapping[str, VirtualModel] | None = None,
    allowed_models: Collection[str] | None = None,
) -> Route:
    """Resolve a virtual or concrete name against what is configured and healthy now.

    `virtual_models` defaults to the config's (a tenant passes its own mappings over them);
    `allowed_models`, when given, is the tenant's allow-list of concrete models.
    """
    names = config.virtual_models if virtual_models is None else virtual_models
    virtual = names.get(requested)
    if virtual is None:
        if requested not in config.models:
            raise ModelNotFound(f"unknown model {requested!r}; GET /api/v1/models lists them")
        if allowed_models is not None and requested not in allowed_models:
            raise ModelNotAllowed(f"model {requested!r} is not allowed for this tenant")
        virtual = VirtualModel(strategy="balanced", candidates=(requested,))
        strategy = "direct"
    else:
        strategy = virtual.strategy
    chain: list[str] = []
    gaps: list[tuple[str, Gap]] = []
    for name in virtual.candidates:
        spec = config.models.get(name)
        gap = _gap(name, spec, needs, configured_providers, open_providers, allowed_models)
        if gap is None:
            chain.append(name)
        else:
            gaps.append((name, gap))
    if not chain:
        raise _no_route(requested, gaps)
    ranked = rank(virtual, chain, config.models, stats or {})
    skipped = [{"model": name, "reason": gap.text} for name, gap in gaps]
    return Route(requested, strategy, ranked, skipped)
