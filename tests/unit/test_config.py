"""The configuration config (`domain/config.py`) checks its references."""

from __future__ import annotations

import pytest

from domain.config import parse_config


def test_config_references_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        parse_config(
            {
                "providers": {},
                "models": {
                    "m": {
                        "provider": "nope",
                        "context_window": 1,
                        "max_output_tokens": 1,
                        "input_price_per_mtok": 0,
                        "output_price_per_mtok": 0,
                    }
                },
            }
        )
