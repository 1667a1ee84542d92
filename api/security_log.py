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
from collections.abc import Awaitable, Callable
from typing import Any

FLUSH_S = 1.0
MAX_PENDING = 1000  # distinct entries per interval; more are counted as dropped
log = logging.getLogger(__name__)

Record = Callable[[list[dict[str, Any]]], Awaitable[None]]


class SecurityLog:
    """One replica's buffer of refusals and data accesses, flushed to `record` each second."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self._pending: dict[str, dict[str, Any]] = {}
        self._dropped = 0
        self._flusher: asyncio.Task[None] | None = None

    def note(
        self, entries: list[dict[str, Any]], source: str | None, method: str, path: str
    ) -> None:
        """Queue audit entries (those naming a tenant), with where the request came from."""
        for entry in entries:
            if not entry.get("tenant_id"):
                continue
            full = {**entry, "source": source, "detail": {**entry["detail"], "method": method,
                                                          "path": path}}  # fmt: skip
            key = json.dumps(full, sort_keys=True)
            if key in self._pending:
                self._pending[key]["count"] += 1
            elif len(self._pending) < MAX_PENDING:
                self._pending[key] = {**full, "at": time.time(), "target": None, "count": 1}
            else:
                self._dropped += 1
        if self._pending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_S)
        entries = list(self._pending.values())
        self._pending.clear()
        if self._dropped:
            log.warning("audit: %d refusals over the buffer were not recorded", self._dropped)
            self._dropped = 0
        try:
            await self.record(entries)
        except Exception as exc:  # the trail misses this batch; the requests were answered
            log.error("audit: could not record %d refusals: %s", len(entries), type(exc).__name__)
