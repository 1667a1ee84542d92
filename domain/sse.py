"""Server-Sent Events framing (the data as UTF-8 JSON, `fast_json`)."""

from __future__ import annotations

from typing import Any

from domain import fast_json


def frame(event_id: int | None, event: str, data: dict[str, Any]) -> bytes:
    """One SSE event with its id (none: the client's last id stands), type and JSON data."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + fast_json.dumps(data) + b"\n\n"


def comment(text: str) -> bytes:
    """An SSE comment line: ignored by clients, keeps idle proxies from closing."""
    return f": {text}\n\n".encode()


def frame_batch(batch: list[dict[str, Any]]) -> bytes:
    """Events `{"id"?, "event", "data"}` as SSE, one after another."""
    return b"".join(frame(e.get("id"), e["event"], e["data"]) for e in batch)


def frame_batch_without_usage(batch: list[dict[str, Any]]) -> bytes:
    """`frame_batch` leaving out `usage_update` events (`stream_options.include_usage=false`;
    the final result still carries the usage)."""
    return frame_batch([e for e in batch if e["event"] != "usage_update"])
