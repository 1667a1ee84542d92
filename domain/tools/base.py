"""What every built-in tool is, and the argument checking they share.

A built-in tool declares its arguments as a JSON schema; `checked` enforces exactly that
schema (names, required, types, bounds, defaults), so what the model is shown is what holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


class ToolInputError(ValueError):
    """Arguments the tool cannot work with; the message names the argument."""


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    input_schema: dict[str, Any]
    compute: Callable[[dict[str, Any]], dict[str, Any]]

    def run(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return self.compute(checked(self.input_schema, arguments))


def number(description: str, *, default: float | None = None, **bounds: float) -> dict[str, Any]:
    """A `number` property; `bounds` are JSON-schema keywords such as `minimum`."""
    spec: dict[str, Any] = {"type": "number", "description": description, **bounds}
    if default is not None:
        spec["default"] = default
    return spec


def checked(schema: dict[str, Any], raw: dict[str, Any]) -> dict[str, Any]:
    """`raw` checked against `schema`, with defaults filled in; else ToolInputError."""
    if not isinstance(raw, dict):
        raise ToolInputError("arguments must be a JSON object")
    props: dict[str, Any] = schema["properties"]
    unknown = sorted(set(raw) - set(props))
    if unknown:
        raise ToolInputError(f"unknown argument(s): {', '.join(unknown)}")
    missing = [name for name in schema.get("required", []) if raw.get(name) is None]
    if missing:
        raise ToolInputError(f"missing argument(s): {', '.join(missing)}")
    out: dict[str, Any] = {}
    for name, spec in props.items():
        value = raw.get(name, spec.get("default"))
        if value is not None:
            out[name] = _value(name, spec, value)
    return out


def _value(name: str, spec: dict[str, Any], value: Any) -> Any:
    kind = spec.get("type")
    if kind in ("number", "integer"):
        return _number(name, spec, value)
    if kind == "array":
        if not isinstance(value, list):
            raise ToolInputError(f"{name} must be a list")
        if len(value) < spec.get("minItems", 0):
            raise ToolInputError(f"{name} needs at least {spec['minItems']} items")
        if len(value) > spec.get("maxItems", math.inf):
            raise ToolInputError(f"{name} takes at most {spec['maxItems']} items")
        return [_value(f"{name}[{i}]", spec["items"], item) for i, item in enumerate(value)]
    if kind == "string":
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ToolInputError(f"{name} must be a string")
        return str(value)
    return value


def _number(name: str, spec: dict[str, Any], value: Any) -> float | int:
    if isinstance(value, str):
        try:
            value = float(value.replace(",", "").replace("_", ""))
        except ValueError:
            raise ToolInputError(f"{name} must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ToolInputError(f"{name} must be a finite number")
    if spec["type"] == "integer":
        if value != int(value):
            raise ToolInputError(f"{name} must be a whole number")
        value = int(value)
    if "minimum" in spec and value < spec["minimum"]:
        raise ToolInputError(f"{name} must be at least {spec['minimum']}")
    if "exclusiveMinimum" in spec and value <= spec["exclusiveMinimum"]:
        raise ToolInputError(f"{name} must be more than {spec['exclusiveMinimum']}")
    if "maximum" in spec and value > spec["maximum"]:
        raise ToolInputError(f"{name} must be at most {spec['maximum']}")
    return value


def money(value: float | int | Decimal) -> Decimal:
    """An exact amount of money, rounded half up to cents."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def cents(value: Decimal) -> float:
    """A Decimal as the JSON number the model reads, to the cent."""
    return float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def percent(value: Decimal) -> float:
    """A ratio as a percentage with two decimals."""
    return cents(value * 100)
