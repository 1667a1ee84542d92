"""Small configurations that unit tests of routing and tenant policy share."""

from __future__ import annotations

from domain.config import Config, parse_config


def strategy_config() -> Config:
    """Three models on one provider and a virtual name per strategy over them."""
    data = {
        "providers": {"p": {"type": "openai", "base_url": "https://x"}},
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
    return parse_config(data)
