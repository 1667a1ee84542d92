"""Routing (`domain/routing.py`): virtual names resolve to ranked candidates, with
reasons for the ones left out."""

from __future__ import annotations

import pytest

from actors.settings import DEFAULT_CONFIG, load_config
from domain import errors
from domain.routing import resolve
from tests.unit.configs import strategy_config

CATALOG = load_config(DEFAULT_CONFIG)
VIRTUAL = (
    "auto",
    "cb:smart-chat",
    "cb:cost-optimal",
    "cb:fastest",
    "cb:coding",
    "cb:analysis",
    "cb:creative",
)


@pytest.mark.parametrize("name", VIRTUAL)
def test_every_legacy_virtual_name_resolves_to_a_concrete_model(name: str) -> None:
    route = resolve(name, CATALOG, {"openai"})
    assert route.chain and all(m in CATALOG.models for m in route.chain)
    assert not route.chain[0].startswith("cb:")


def test_cost_optimal_picks_the_cheapest_candidate() -> None:
    route = resolve("cb:cost-optimal", CATALOG, {"openai"})
    prices = [
        CATALOG.models[m].input_price_per_mtok + CATALOG.models[m].output_price_per_mtok
        for m in route.chain
    ]
    assert prices == sorted(prices)


def test_unconfigured_provider_is_skipped_with_a_reason() -> None:
    with pytest.raises(errors.NoModelAvailable, match="not configured"):
        resolve("cb:smart-chat", CATALOG, set())


def test_unknown_model_is_a_typed_error() -> None:
    with pytest.raises(errors.ModelNotFound):
        resolve("cb:nonsense", CATALOG, {"openai"})


def test_each_strategy_ranks_its_candidates() -> None:
    from domain.routing import ModelStats

    config = strategy_config()
    chain = {s: resolve(s, config, {"p"}).chain for s in config.virtual_models}
    assert chain == {
        "balanced": ["a", "b", "c"],
        "cost_optimized": ["c", "b", "a"],
        "performance": ["c", "a", "b"],  # priors until there is data
        "reliability": ["a", "b", "c"],  # no errors seen: the configured order
        "task_specific": ["b", "a", "c"],  # creative: b's strength, then quality
    }
    observed = {
        "c": ModelStats(latency_ms=2000.0, error_rate=0.5, samples=10),
        "a": ModelStats(latency_ms=50.0, error_rate=0.2, samples=2),  # too few samples
    }
    assert resolve("performance", config, {"p"}, stats=observed).chain == ["a", "b", "c"]
    assert resolve("reliability", config, {"p"}, stats=observed).chain == ["b", "a", "c"]


def test_routing_filters_on_capability_context_and_breakers_with_reasons() -> None:
    from domain.routing import Needs

    config = strategy_config()
    route = resolve(
        "balanced",
        config,
        {"p"},
        needs=Needs(capabilities=frozenset({"tools"}), prompt_tokens=900, max_tokens=200),
    )
    assert route.chain == ["b"]
    assert route.explain()["candidates"] == [
        {"model": "b", "skipped": None},
        {"model": "a", "skipped": "context window 1000 < 1100 tokens needed"},
        {"model": "c", "skipped": "lacks tools"},
    ]
    with pytest.raises(errors.NoModelAvailable, match="circuit open"):
        resolve("balanced", config, {"p"}, open_providers={"p"})
    with pytest.raises(errors.CapabilityNotSupported):
        resolve("c", config, {"p"}, needs=Needs(capabilities=frozenset({"tools"})))
    with pytest.raises(errors.ContextLengthExceeded):
        resolve("balanced", config, {"p"}, needs=Needs(prompt_tokens=9000))
