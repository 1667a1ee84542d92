"""Times as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: float) -> str:
    """A unix time as ISO 8601 UTC (`2025-06-01T00:00:00Z`)."""
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")
