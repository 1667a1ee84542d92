"""Every problem of a configuration mapping, each with its path in the file."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from domain.config import Config, dangling_references


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")


def config_problems(data: Any) -> list[str]:
    """`path: message` for each structural problem and each dangling reference."""
    if not isinstance(data, dict):
        return ["(root): the configuration must be a mapping"]
    data = {k: v for k, v in data.items() if not str(k).startswith("_")}
    problems: list[str] = []
    try:
        Config.model_validate(data, context={"skip_references": True})
    except ValidationError as exc:
        problems += [f"{_path(e['loc'])}: {_message(e)}" for e in exc.errors()]
    problems += dangling_references(data)
    return problems
