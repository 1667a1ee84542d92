"""Per-model parameter filtering: keep what the model accepts, rename, clamp to its range."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.config import ModelSpec


@dataclass
class FilteredParameters:
    wire: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    adjusted: dict[str, Any] = field(default_factory=dict)


def filter_parameters(model: ModelSpec, requested: dict[str, Any]) -> FilteredParameters:
    """Translate unified parameters into the model's wire names, dropping what it rejects."""
    out = FilteredParameters()
    for name, value in requested.items():
        if value is None:
            continue
        spec = model.parameters.get(name)
        if spec is None:
            out.dropped.append(name)
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            clamped = value
            upper = model.max_output_tokens if name == "max_tokens" else spec.max
            if spec.min is not None and clamped < spec.min:
                clamped = type(value)(spec.min)
            if upper is not None and clamped > upper:
                clamped = type(value)(upper)
            if clamped != value:
                out.adjusted[name] = clamped
            value = clamped
        out.wire[spec.name or name] = value
    return out
