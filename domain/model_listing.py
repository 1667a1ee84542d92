"""The models a tenant can name, as `GET /api/v1/models` shows them."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from domain.config import Config, ModelSpec, VirtualModel
from domain.errors import CBError
from domain.routing import ModelStats, resolve
from domain.tenant_models import TenantModelPolicy

CONCRETE_FIELDS: tuple[str, ...] = (
    "id",
    "provider",
    "provider_model",
    "capabilities",
    "context_window",
    "max_output_tokens",
    "input_price_per_mtok",
    "output_price_per_mtok",
    "cached_input_price_per_mtok",
)
"""What `concrete_model` tells of a model, in this order."""

PROVIDER_MODEL_FIELDS: tuple[str, ...] = (
    "id",
    "provider_model",
    "context_window",
    "max_output_tokens",
    "capabilities",
    "input_price_per_mtok",
    "output_price_per_mtok",
)
"""What `GET /api/v1/providers` shows of each of a provider's models, in this order."""


def _prices(model: ModelSpec) -> dict[str, float | None]:
    return {
        "input_price_per_mtok": model.input_price_per_mtok,
        "output_price_per_mtok": model.output_price_per_mtok,
        "cached_input_price_per_mtok": model.cached_input_price_per_mtok,
    }


def concrete_model(
    config: Config, name: str, fields: Sequence[str] = CONCRETE_FIELDS
) -> dict[str, Any]:
    """The config's facts about concrete model `name`: the `fields` asked for, in their order.

    The one builder of a concrete model's dict, for `GET /api/v1/models` and the providers.
    """
    model = config.models[name]
    facts: dict[str, Any] = {
        "id": name,
        "provider": model.provider,
        "provider_model": config.wire_model(name),
        "capabilities": sorted(model.capabilities),
        "context_window": model.context_window,
        "max_output_tokens": model.max_output_tokens,
        **_prices(model),
    }
    return {f: facts[f] for f in fields}


def provider_models(config: Config, provider: str) -> list[dict[str, Any]]:
    """The models of one provider as `GET /api/v1/providers` shows them, in config order."""
    return [
        concrete_model(config, name, PROVIDER_MODEL_FIELDS)
        for name, model in config.models.items()
        if model.provider == provider
    ]


def models_listing(
    config: Config,
    policy: TenantModelPolicy,
    configured: Collection[str],
    open_providers: Collection[str],
    stats: Mapping[str, ModelStats],
) -> dict[str, Any]:
    """Virtual names first (with what each resolves to now), then the concrete models."""
    names = policy.virtual_models(config)
    virtual = [
        _virtual_entry(config, policy, names, name, configured, open_providers, stats)
        for name in sorted(names)
    ]
    concrete = [
        {
            "id": name,
            "kind": "concrete",
            **concrete_model(config, name),
            "available": model.provider in configured and model.provider not in open_providers,
            "breaker": "open" if model.provider in open_providers else "closed",
        }
        for name, model in config.models.items()
        if policy.allowed_models is None or name in policy.allowed_models
    ]
    return {"models": virtual + concrete}


def _virtual_entry(
    config: Config,
    policy: TenantModelPolicy,
    names: Mapping[str, VirtualModel],
    name: str,
    configured: Collection[str],
    open_providers: Collection[str],
    stats: Mapping[str, ModelStats],
) -> dict[str, Any]:
    """One virtual name: its definition, and what it resolves to for this tenant now."""
    spec = names[name]
    entry: dict[str, Any] = {
        "id": name,
        "kind": "virtual",
        "source": "tenant" if name in policy.mappings else "platform",
        "strategy": spec.strategy,
        "task": spec.task,
        "description": spec.description,
        "candidates": list(spec.candidates),
    }
    try:
        route = resolve(
            name,
            config,
            configured,
            open_providers,
            stats=stats,
            virtual_models=names,
            allowed_models=policy.allowed_models,
        )
    except CBError as err:
        entry.update(resolves_to=None, fallbacks=[], provider=None, unavailable=err.message)
        entry.update(capabilities=[], input_price_per_mtok=None, output_price_per_mtok=None)
    else:
        chosen = config.models[route.chain[0]]
        entry.update(
            resolves_to=route.chain[0],
            fallbacks=route.chain[1:],
            provider=chosen.provider,
            capabilities=sorted(chosen.capabilities),
            skipped=route.explain()["candidates"][len(route.chain) :],
            **_prices(chosen),
        )
    return entry
