"""Cost from real token counts and config prices (USD per million tokens)."""

from __future__ import annotations

from domain.config import ModelSpec


def cost_usd(
    model: ModelSpec, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0
) -> float:
    """What a call cost, rounded to a billionth of a dollar.

    `cached_tokens` (part of `prompt_tokens`) read from the provider's prompt cache are
    priced at the model's cached-input price when the config gives one.
    """
    cached = min(cached_tokens, prompt_tokens) if model.cached_input_price_per_mtok else 0
    raw = (
        (prompt_tokens - cached) * model.input_price_per_mtok
        + cached * (model.cached_input_price_per_mtok or 0.0)
        + completion_tokens * model.output_price_per_mtok
    ) / 1_000_000
    return round(raw, 9)
