"""A tenant's model policy (`domain/tenant_models.py`): name mappings, allowed models,
parameter defaults and caps."""

from __future__ import annotations

from typing import Any

import pytest

from domain import errors
from domain.config import parse_config
from domain.routing import resolve


def _strategy_catalog() -> Any:
    from domain.config import Config

    data = {
        "providers": {"p": {"type": "openai", "base_url": "http://x"}},
        "models": {
            name: {
                "provider": "p",
                "context_window": window,
                "max_output_tokens": 100,
                "capabilities": caps,
                "input_price_per_mtok": price,
                "output_price_per_mtok": price,
                "latency_prior_ms": prior,
                "strengths": strengths,
            }
            for name, window, caps, price, prior, strengths in (
                ("a", 1000, ["chat", "tools"], 3.0, 300, {"coding": 0.9}),
                ("b", 8000, ["chat", "tools"], 1.0, 900, {"creative": 0.9}),
                ("c", 8000, ["chat"], 0.5, 100, {}),
            )
        },
        "virtual_models": {
            s: {"strategy": s, "candidates": ["a", "b", "c"], "task": t}
            for s, t in (
                ("balanced", None),
                ("cost_optimized", None),
                ("performance", None),
                ("reliability", None),
                ("task_specific", "creative"),
            )
        },
    }
    config: Config = parse_config(data)
    return config


def test_a_tenant_policy_maps_names_allows_models_and_caps_parameters() -> None:
    from domain.config import VirtualModel
    from domain.tenant_models import TenantModelPolicy

    config = _strategy_catalog()
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
