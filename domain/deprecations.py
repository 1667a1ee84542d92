"""Deprecated API fields: what replaces each and when it goes, the usage record the ingress
keeps of them, and the HTTP headers that announce them (RFC 9745 `Deprecation`, RFC 8594
`Sunset`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any

from eventsourcing.domain import Aggregate, event


@dataclass(frozen=True)
class Deprecation:
    """A field (by its schema coordinate, `Type.field`) that is going away."""

    coordinate: str
    replacement: str
    deprecated_on: dt.date
    sunset_on: dt.date  # the last day it is served

    def reason(self) -> str:
        """The `@deprecated(reason:)` text: the replacement and the removal date."""
        return (
            f"Use {self.replacement} instead. Deprecated on {self.deprecated_on.isoformat()};"
            f" removed after {self.sunset_on.isoformat()}."
        )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def deprecation_header(used: Iterable[Deprecation]) -> str:
    """RFC 9745 `Deprecation`: when the earliest of `used` was deprecated, as a structured
    field date (`@` and unix seconds)."""
    return f"@{int(_midnight(min(d.deprecated_on for d in used)).timestamp())}"


def sunset_header(used: Iterable[Deprecation]) -> str:
    """RFC 8594 `Sunset`: the end of the earliest last day of `used`, as an HTTP-date."""
    last = min(d.sunset_on for d in used)
    end = _midnight(last) + dt.timedelta(days=1) - dt.timedelta(seconds=1)
    return format_datetime(end, usegmt=True)


class DeprecatedUsage(Aggregate):
    """Uses of deprecated fields seen by one ingress replica in one flush interval: rows of
    `{"tenant_id", "field", "count", "first_at", "last_at"}` (unix seconds)."""

    @event("Recorded")
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows


class UsageTally:
    """Counts per tenant and field, gathered between flushes (bounded: a flood of distinct
    pairs beyond `limit` is counted as dropped, not kept)."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.dropped = 0

    def add(self, tenant_id: str, fields: Iterable[str], at: float) -> None:
        for name in fields:
            row = self.rows.get((tenant_id, name))
            if row is not None:
                row["count"] += 1
                row["last_at"] = max(row["last_at"], at)
            elif len(self.rows) < self.limit:
                self.rows[(tenant_id, name)] = {
                    "tenant_id": tenant_id, "field": name, "count": 1, "first_at": at,
                    "last_at": at,
                }  # fmt: skip
            else:
                self.dropped += 1

    def take(self) -> list[dict[str, Any]]:
        """The rows gathered so far, in a stable order; the tally starts again empty."""
        rows = [self.rows[key] for key in sorted(self.rows)]
        self.rows = {}
        return rows
