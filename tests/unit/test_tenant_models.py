"""A tenant's model policy (`domain/tenant_models.py`): name mappings, allowed models,
parameter defaults and caps."""

from __future__ import annotations

import pytest

from domain import errors
from domain.routing import resolve
from tests.unit.configs import strategy_config


def test_a_tenant_policy_maps_names_allows_models_and_caps_parameters() -> None:
    from domain.config import VirtualModel
    from domain.tenant_models import TenantModelPolicy

    config = strategy_config()
    policy = TenantModelPolicy(
        mappings={"balanced": VirtualModel(strategy="cost_optimized", candidates=("a", "b"))},
        allowed_models=frozenset({"a", "b"}),
        parameter_defaults={"temperature": 0.1},
        parameter_caps={"max_tokens": 50},
    )
    route = resolve(
        "balanced",
        config,
        {"p"},
        virtual_models=policy.virtual_models(config),
        allowed_models=policy.allowed_models,
    )
    assert (route.strategy, route.chain) == ("cost_optimized", ["b", "a"])
    with pytest.raises(errors.ModelNotAllowed):
        resolve("c", config, {"p"}, allowed_models=policy.allowed_models)
    assert policy.parameters({"max_tokens": 500}) == (
        {"temperature": 0.1, "max_tokens": 50},
        {"max_tokens": 50},
    )
