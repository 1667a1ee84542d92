"""Model parameters (`domain/parameters.py`): renamed, dropped and clamped per model."""

from __future__ import annotations

from actors.settings import DEFAULT_CONFIG, load_config
from domain.parameters import filter_parameters

CATALOG = load_config(DEFAULT_CONFIG)


def test_reasoning_model_gets_max_completion_tokens_and_no_temperature() -> None:
    out = filter_parameters(CATALOG.models["o4-mini"], {"temperature": 0.2, "max_tokens": 64})
    assert out.wire == {"max_completion_tokens": 64}
    assert out.dropped == ["temperature"]


def test_parameters_are_clamped_to_the_model_range() -> None:
    out = filter_parameters(CATALOG.models["gpt-4o-mini"], {"max_tokens": 10**6, "top_p": 0.5})
    assert out.wire == {"max_tokens": 16384, "top_p": 0.5}
    assert out.adjusted == {"max_tokens": 16384}
