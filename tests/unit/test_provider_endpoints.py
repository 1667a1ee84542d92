"""Several endpoints of one provider: their effective settings, their balancing, their
combined health, and the presets of the default configuration."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import yaml

from actors.settings import DEFAULT_CONFIG, configured_endpoints, configured_providers
from domain.config import ProviderSpec, endpoint_data, parse_config
from domain.endpoints import Balancer
from domain.provider_health import combined_health

PRESETS = ("groq", "together", "deepseek", "mistral", "openrouter", "vllm", "lmstudio", "llamacpp")


def default() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_CONFIG.read_text())


def with_endpoints(*endpoints: dict[str, Any], **shared: Any) -> dict[str, Any]:
    data = default()
    data["providers"]["openai"] = {**data["providers"]["openai"], **shared}
    data["providers"]["openai"]["endpoints"] = list(endpoints)
    return data


def test_a_provider_without_endpoints_is_its_own_single_endpoint() -> None:
    config = parse_config(default())
    (only,) = config.endpoints("openai")
    assert (only.key, only.provider, only.name, only.weight) == ("openai", "openai", None, 1.0)
    assert only.spec is config.providers["openai"]


def test_endpoints_take_the_providers_settings_under_their_own() -> None:
    data = with_endpoints(
        {"name": "east", "api_key_env": "OPENAI_KEY_EAST", "weight": 3},
        {"name": "west", "base_url": "https://west.example/v1", "requests_per_minute": 50},
        max_concurrency=9,
    )
    east, west = parse_config(data).endpoints("openai")
    assert (east.key, east.weight, west.key, west.weight) == ("openai:east", 3, "openai:west", 1)
    assert east.spec.api_key_env == "OPENAI_KEY_EAST" and east.spec.max_concurrency == 9
    assert east.spec.base_url_env == "OPENAI_BASE_URL"  # inherited with the URL
    assert west.spec.base_url == "https://west.example/v1" and west.spec.base_url_env is None
    assert west.spec.api_key_env == "OPENAI_API_KEY" and west.spec.requests_per_minute == 50
    assert east.spec.endpoints == () and west.spec.endpoints == ()
    # the provider actor reads the same settings from the raw configuration
    raw = endpoint_data(data["providers"], "openai:west")
    assert raw is not None and ProviderSpec.model_validate(raw) == west.spec
    assert endpoint_data(data["providers"], "openai:north") is None
    assert endpoint_data(data["providers"], "anthropic") == data["providers"]["anthropic"]


@pytest.mark.parametrize(
    ("endpoints", "problem"),
    [
        ([{"name": "a"}, {"name": "a"}], "names must be unique"),
        ([{"name": "East"}], "String should match pattern"),
        ([{"name": "far", "base_url": "http://10.1.2.3/v1"}], "providers.openai"),
        ([{"name": "x", "weight": 0}], "greater than 0"),
    ],
)
def test_bad_endpoints_are_refused_with_where(endpoints: list[dict], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_config(with_endpoints(*endpoints))


def three() -> tuple:
    data = with_endpoints({"name": "a", "weight": 5}, {"name": "b", "weight": 1}, {"name": "c"})
    return parse_config(data).endpoints("openai")


def test_weighted_balancing_gives_each_endpoint_exactly_its_share() -> None:
    balancer = Balancer()
    firsts = [balancer.order(three(), "weighted", {})[0].name for _ in range(70)]
    assert Counter(firsts) == {"a": 50, "b": 10, "c": 10}
    assert firsts[:7].count("a") == 5  # smooth: spread out, not in runs
    order = Balancer().order(three(), "weighted", {})
    assert [e.name for e in order] == ["a", "b", "c"]  # then the others by weight


def test_least_busy_balancing_picks_the_lightest_load_by_weight() -> None:
    a, b, c = three()
    busy = {a.key: 10, b.key: 1, c.key: 3}  # per weight: 2, 1, 3
    assert [e.name for e in Balancer().order((a, b, c), "least_busy", busy)] == ["b", "a", "c"]
    balancer = Balancer()  # ties (all idle) go round by weight
    firsts = [balancer.order((b, c), "least_busy", {})[0].name for _ in range(4)]
    assert sorted(firsts) == ["b", "b", "c", "c"] and firsts[0] != firsts[1]


def test_open_endpoints_are_left_out_while_another_remains() -> None:
    a, b, c = three()
    assert [e.name for e in Balancer().order((a, b, c), "weighted", {}, {a.key, c.key})] == ["b"]
    every = Balancer().order((a, b, c), "weighted", {}, {a.key, b.key, c.key})
    assert {e.name for e in every} == {"a", "b", "c"}


def health(**changes: Any) -> dict[str, Any]:
    base = {
        "healthy": True, "breaker": "closed", "breaker_opened_because": None,
        "consecutive_failures": 0, "error_rate": 0.0, "requests": 0, "failures": 0,
        "average_latency_ms": 0.0, "outstanding_credits": 0, "last_error": None,
        "last_check": None,
    }  # fmt: skip
    return {**base, **changes}


def test_a_providers_health_is_its_endpoints_combined() -> None:
    dead = health(
        healthy=False, breaker="open", breaker_opened_because="2 consecutive failures",
        consecutive_failures=2, error_rate=1.0, requests=2, failures=2,
        last_error="provider_error", last_check=100.0,
    )  # fmt: skip
    alive = health(requests=6, average_latency_ms=10.0, error_rate=0.0, last_check=101.0)
    combined = combined_health([("dead", dead), ("alive", alive)])
    assert combined["healthy"] is True and combined["breaker"] == "closed"
    assert combined["breaker_opened_because"] is None
    assert combined["requests"] == 8 and combined["failures"] == 2
    assert combined["error_rate"] == 0.25 and combined["average_latency_ms"] == 7.5
    assert combined["last_error"] == "provider_error" and combined["last_check"] == 101.0
    assert [e["endpoint"] for e in combined["endpoints"]] == ["dead", "alive"]
    both_dead = combined_health([("a", dead), ("b", dead)])
    assert both_dead["healthy"] is False and both_dead["breaker"] == "open"
    assert both_dead["breaker_opened_because"] == "2 consecutive failures"


def test_presets_are_off_until_their_key_or_url_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GROQ_API_KEY", "VLLM_BASE_URL", "OPENAI_API_KEY", "CB_LOCAL_MODEL_URL"):
        monkeypatch.delenv(name, raising=False)
    config = parse_config(default())
    assert set(PRESETS) <= set(config.providers)
    assert not configured_providers(config) & set(PRESETS)
    monkeypatch.setenv("GROQ_API_KEY", "k")
    monkeypatch.setenv("VLLM_BASE_URL", "http://127.0.0.1:8000/v1")
    assert configured_providers(config) & set(PRESETS) == {"groq", "vllm"}
    for name in PRESETS:  # each has a catalog model and a base URL override
        assert config.providers[name].base_url_env
        assert any(m.provider == name for m in config.models.values())


def test_a_served_model_is_named_by_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(default())
    assert config.wire_model("vllm-served") == "vllm-served"
    assert config.wire_model("vllm-served", {"VLLM_MODEL": "Qwen/Qwen3-8B"}) == "Qwen/Qwen3-8B"
    assert config.wire_model("groq-llama-3.3-70b", {}) == "llama-3.3-70b-versatile"


def test_the_tenants_own_key_makes_every_endpoint_usable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_KEY_EAST", "k")
    config = parse_config(
        with_endpoints({"name": "east", "api_key_env": "OPENAI_KEY_EAST"}, {"name": "west"})
    )
    keys = {e.key for e in configured_endpoints(config) if e.provider == "openai"}
    assert keys == {"openai:east"}
    keys = {e.key for e in configured_endpoints(config, {"openai"}) if e.provider == "openai"}
    assert keys == {"openai:east", "openai:west"}
