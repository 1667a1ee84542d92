"""Cost (`domain/pricing.py`): tokens times the config's prices, cached tokens at their rate."""

from __future__ import annotations

import pytest

from actors.settings import DEFAULT_CONFIG, load_config
from domain.codecs import openai_chat
from domain.pricing import cost_usd

CATALOG = load_config(DEFAULT_CONFIG)


def test_cost_is_tokens_times_catalog_price() -> None:
    model = CATALOG.models["gpt-4o-mini"]
    assert cost_usd(model, 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert cost_usd(model, 120, 30) == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)


def test_cached_prompt_tokens_are_priced_at_the_cached_rate() -> None:
    model = load_config(DEFAULT_CONFIG).models["gpt-4o-mini"]  # $0.15 in, $0.075 cached, $0.60
    assert cost_usd(model, 1000, 100, cached_tokens=400) == round(
        (600 * 0.15 + 400 * 0.075 + 100 * 0.60) / 1e6, 9
    )
    assert cost_usd(model, 1000, 100) == round((1000 * 0.15 + 100 * 0.60) / 1e6, 9)
    body = {
        "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "total_tokens": 1100,
            "prompt_tokens_details": {"cached_tokens": 400},
        },
    }
    assert openai_chat.parse_response(body).usage.cached_tokens == 400
