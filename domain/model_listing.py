"""The models a tenant can name, as `GET /api/v1/models` shows them."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from domain.catalog import Catalog, ModelSpec
from domain.errors import CBError
from domain.routing import ModelStats, resolve
from domain.tenant_models import TenantModelPolicy


def _prices(model: ModelSpec) -> dict[str, float | None]:
    return {
        "input_price_per_mtok": model.input_price_per_mtok,
        "output_price_per_mtok": model.output_price_per_mtok,
        "cached_input_price_per_mtok": model.cached_input_price_per_mtok,
    }


def models_listing(
    catalog: Catalog,
    policy: TenantModelPolicy,
    configured: Collection[str],
    open_providers: Collection[str],
    stats: Mapping[str, ModelStats],
) -> dict[str, Any]:
    """Virtual names first (with what each resolves to now), then the concrete models."""
    names = policy.virtual_models(catalog)
    virtual = []
    for name in sorted(names):
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
                catalog,
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
            chosen = catalog.models[route.chain[0]]
            entry.update(
                resolves_to=route.chain[0],
                fallbacks=route.chain[1:],
                provider=chosen.provider,
                capabilities=sorted(chosen.capabilities),
                skipped=route.explain()["candidates"][len(route.chain) :],
                **_prices(chosen),
            )
        virtual.append(entry)
    concrete = []
    for name, model in catalog.models.items():
        if policy.allowed_models is not None and name not in policy.allowed_models:
            continue
        concrete.append(
            {
                "id": name,
                "kind": "concrete",
                "provider": model.provider,
                "provider_model": catalog.wire_model(name),
                "capabilities": sorted(model.capabilities),
                "context_window": model.context_window,
                "max_output_tokens": model.max_output_tokens,
                **_prices(model),
                "available": model.provider in configured and model.provider not in open_providers,
                "breaker": "open" if model.provider in open_providers else "closed",
            }
        )
    return {"models": virtual + concrete}
