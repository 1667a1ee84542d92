"""Identifier checks and request facts that every part of the API needs; a leaf module."""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection

UUID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
"""A lower-case UUID: the form of tenant and execution ids."""


def client_of(request: HTTPConnection) -> str | None:
    """The address the request came from."""
    return request.client.host if request.client else None
