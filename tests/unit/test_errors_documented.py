"""Every error type the gateway can answer is explained in the guide's troubleshooting page."""

from __future__ import annotations

from pathlib import Path

from domain import errors

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "errors.md"


def _types(cls: type) -> set[str]:
    found = {cls.type} if isinstance(getattr(cls, "type", None), str) else set()
    for sub in cls.__subclasses__():
        found |= _types(sub)
    return found


def test_every_error_type_has_a_row_in_the_guide() -> None:
    page = PAGE.read_text()
    types = _types(errors.CBError)
    assert len(types) > 25, types
    missing = sorted(t for t in types if f"| `{t}` |" not in page)
    assert not missing, f"docs/guide/errors.md lacks a row for {missing}"
