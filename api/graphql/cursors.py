"""Opaque pagination cursors: a position (JSON values) in URL-safe base64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from domain.errors import InvalidRequest

MAX_PAGE = 100


def encode(*position: Any) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str, arity: int) -> list[Any]:
    """The position a cursor of ours holds; a clear error for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        position = None
    if not isinstance(position, list) or len(position) != arity:
        raise InvalidRequest(f"`after`: {cursor[:40]!r} is not a cursor this API gave")
    return position


def page_size(first: int) -> int:
    """`first`, checked: 1 to MAX_PAGE."""
    if not 1 <= first <= MAX_PAGE:
        raise InvalidRequest(f"`first` must be between 1 and {MAX_PAGE}, not {first}")
    return first
