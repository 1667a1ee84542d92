"""`extensions` of a GraphQL error raised as a CBError: a stable `code` and the error
`type` (as REST's body says it), and `retryAfter`/`executionId` when known."""

from __future__ import annotations

from typing import Any

from domain.errors import CBError

# the codes GraphQL clients already know (Apollo's); any other type is its upper case
CODES = {
    "invalid_request": "BAD_USER_INPUT",
    "authentication_failed": "UNAUTHENTICATED",
    "permission_denied": "FORBIDDEN",
}


def error_extensions(err: CBError) -> dict[str, Any]:
    """`{"code", "type"}`, with `retryAfter` and `executionId` when the error has them."""
    out: dict[str, Any] = {"code": CODES.get(err.type, err.type.upper()), "type": err.type}
    if err.retry_after is not None:
        out["retryAfter"] = err.retry_after
    if err.execution_id:
        out["executionId"] = err.execution_id
    return out
