"""What a log line or span needs to know about the work in hand: W3C trace context and the
tenant, execution and trace ids of the current task (context variables, per asyncio task)."""

from __future__ import annotations

import re
from contextvars import ContextVar

TENANT_ID: ContextVar[str | None] = ContextVar("cb_tenant_id", default=None)
EXECUTION_ID: ContextVar[str | None] = ContextVar("cb_execution_id", default=None)
TRACE_ID: ContextVar[str | None] = ContextVar("cb_trace_id", default=None)

_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id of a valid `traceparent` header (version 00 or later), else None."""
    if not traceparent:
        return None
    match = _TRACEPARENT.match(traceparent.strip().lower())
    if match is None or match.group(1) == "ff":
        return None
    trace_id, span_id = match.group(2), match.group(3)
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id
