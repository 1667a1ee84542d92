"""Cost from real token counts and catalog prices (USD per million tokens)."""

from __future__ import annotations

from domain.catalog import ModelSpec


def cost_usd(model: ModelSpec, prompt_tokens: int, completion_tokens: int) -> float:
    """What a call cost, rounded to a billionth of a dollar."""
    raw = (
        prompt_tokens * model.input_price_per_mtok + completion_tokens * model.output_price_per_mtok
    ) / 1_000_000
    return round(raw, 9)
