"""The `Idempotency-Key` header of POST routes, passed on to the tenant actor that claims it
(`actors/idempotency_keys.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header

from domain.idempotency import checked_key

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="the same key and body within 24 h: the first request's answer, run once",
    ),
]


def keyed(request: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
    """The request as the tenant actor takes it: the key, checked, goes with it."""
    if idempotency_key is not None:
        request["idempotency_key"] = checked_key(idempotency_key)
    return request
