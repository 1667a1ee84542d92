"""The one reply convention of every actor method the ingress calls.

A reply is a plain dict: `{"value": …}`, with `"headers": {…}` when the answer carries HTTP
headers (the tenant's X-RateLimit-* of an execution), or `{"error": …, "status": …}`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ParamSpec

from eventsourcing.persistence import PersistenceError

from domain.errors import CBError, ServiceUnavailable

P = ParamSpec("P")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WithHeaders:
    """An actor method's answer with the HTTP headers the ingress should send beside it."""

    value: Any
    headers: dict[str, str] = field(default_factory=dict)


def replies(fn: Callable[P, Awaitable[Any]]) -> Callable[P, Awaitable[dict[str, Any]]]:
    """Wrap an actor method so expected failures cross Ray as data, not exceptions."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any]:
        try:
            value = await fn(*args, **kwargs)
            if isinstance(value, WithHeaders):
                return {"value": value.value, "headers": value.headers}
            return {"value": value}
        except CBError as err:
            return {"error": err.to_dict(), "status": err.status}
        except PersistenceError as exc:
            log.error("event store failed: %s", type(exc).__name__)
            err = ServiceUnavailable("the event store is unavailable; retry", retry_after=2)
            return {"error": err.to_dict(), "status": err.status}

    return wrapper


def unwrap(reply: dict[str, Any]) -> Any:
    """The value of a reply, or its error raised again on this side."""
    if "error" in reply:
        raise CBError.from_dict(reply["error"])
    return reply["value"]


def unwrap_with_headers(reply: dict[str, Any]) -> WithHeaders:
    """The value of a reply and its headers, or its error raised again on this side."""
    return WithHeaders(unwrap(reply), reply.get("headers") or {})
