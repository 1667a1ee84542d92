"""The analytics API's query: its time range and grouping, checked (a bad one is a 400 that
names the parameter)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from domain.errors import InvalidRequest
from domain.times import iso

GROUP_KEYS = ("day", "hour", "agent", "model", "provider", "status", "kind")
DEFAULT_SPAN_S = 7 * 86400  # without `from`: the last seven days
MAX_SPAN_S = 400 * 86400


def instant(value: str, param: str) -> float:
    """Unix seconds from unix seconds or ISO 8601 (a time without a zone is UTC)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"{param} must be ISO 8601 or unix seconds, got {value[:40]!r}",
            details={"param": param},
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True)
class TimeRange:
    start: float
    end: float

    @classmethod
    def of(cls, start: str | None, end: str | None, now: float) -> TimeRange:
        stop = instant(end, "to") if end else now
        begin = instant(start, "from") if start else stop - DEFAULT_SPAN_S
        if begin >= stop:
            raise InvalidRequest("from must be before to", details={"param": "from"})
        if stop - begin > MAX_SPAN_S:
            raise InvalidRequest(
                f"the range may span at most {MAX_SPAN_S // 86400} days",
                details={"param": "from"},
            )
        return cls(begin, stop)

    def as_api(self) -> dict[str, str]:
        return {"from": iso(self.start), "to": iso(self.end)}


def group_keys(value: str | None) -> list[str]:
    """`group_by`: one key or several, comma-separated; `day` when absent."""
    keys = [k.strip() for k in (value or "day").split(",") if k.strip()]
    unknown = [k for k in keys if k not in GROUP_KEYS]
    if unknown or not keys:
        raise InvalidRequest(
            f"unknown group_by {', '.join(unknown) or value!r}; use {', '.join(GROUP_KEYS)}",
            details={"param": "group_by", "allowed": list(GROUP_KEYS)},
        )
    if len(set(keys)) != len(keys):
        raise InvalidRequest("group_by repeats a key", details={"param": "group_by"})
    return keys


def as_csv(rows: list[dict[str, Any]]) -> str:
    """Rows as CSV for spreadsheets: nested figures flattened (`duration_ms.p50`), maps as
    `key=value;…`, columns in the first row's order."""
    flat = [_flatten(row) for row in rows]
    columns: list[str] = []
    for row in flat:
        columns += [c for c in row if c not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in row.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key != "error_types":
            out.update(_flatten(value, f"{name}."))
        elif isinstance(value, dict):
            out[name] = ";".join(f"{k}={v}" for k, v in value.items())
        elif isinstance(value, list):
            out[name] = " ".join(str(v) for v in value)
        else:
            out[name] = "" if value is None else value
    return out
