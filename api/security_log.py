"""Audit entries only the ingress sees (authentication failures, permission denials,
cross-tenant attempts, data exports), sent to the audit trail in batches.

Recording never slows or fails a request: entries wait in a bounded buffer, repeats within
a flush interval are counted rather than stored again, and a flush that fails is logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from api import runtime

FLUSH_S = 1.0
MAX_PENDING = 1000  # distinct entries per interval; more are counted as dropped
log = logging.getLogger(__name__)

_pending: dict[str, dict[str, Any]] = {}
_dropped = 0
_flusher: asyncio.Task[None] | None = None


def note(entries: list[dict[str, Any]], source: str | None, method: str, path: str) -> None:
    """Queue audit entries (those naming a tenant), with where the request came from."""
    global _dropped, _flusher
    for entry in entries:
        if not entry.get("tenant_id"):
            continue
        full = {**entry, "source": source, "detail": {**entry["detail"], "method": method,
                                                      "path": path}}  # fmt: skip
        key = json.dumps(full, sort_keys=True)
        if key in _pending:
            _pending[key]["count"] += 1
        elif len(_pending) < MAX_PENDING:
            _pending[key] = {**full, "at": time.time(), "target": None, "count": 1}
        else:
            _dropped += 1
    if _pending and (_flusher is None or _flusher.done()):
        _flusher = asyncio.get_running_loop().create_task(_flush_soon())


async def _flush_soon() -> None:
    global _dropped
    await asyncio.sleep(FLUSH_S)
    entries = list(_pending.values())
    _pending.clear()
    if _dropped:
        log.warning("audit: %d refusals over the buffer were not recorded", _dropped)
        _dropped = 0
    try:
        await runtime.query("record_security", entries)
    except Exception as exc:  # the trail misses this batch; the requests were answered
        log.error("audit: could not record %d refusals: %s", len(entries), type(exc).__name__)
