"""The SSE response lets its stream's source go however the response ends."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.requests import ClientDisconnect

from api.streaming import Opened, sse_response


class Source:
    """A live stream's source that has one message, then nothing (a slow model)."""

    def __init__(self) -> None:
        self.sent = [b"event: content_chunk\ndata: {}\n\n"]
        self.closed = 0

    async def read(self, quiet_s: float | None) -> bytes | None:
        return self.sent.pop() if self.sent else None

    def close(self) -> None:
        self.closed += 1


SCOPE = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "POST", "headers": []}


async def _never(*_: Any) -> dict[str, Any]:
    raise AssertionError("not read")


async def test_a_response_whose_client_left_before_its_start_lets_the_source_go() -> None:
    source = Source()

    async def gone(message: dict[str, Any]) -> None:
        raise OSError("the client went away")  # before even the headers could be sent

    with pytest.raises(ClientDisconnect):  # Starlette's word for the send that failed
        await sse_response(Opened([], source), heartbeat_s=60.0)(SCOPE, _never, gone)
    assert source.closed == 1


async def test_a_relayed_stream_is_closed_once_it_has_been_sent() -> None:
    source = Source()
    source.sent.insert(0, b"")  # the end, after the one message
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await sse_response(Opened([], source), heartbeat_s=60.0)(SCOPE, _never, send)
    assert sent[0]["type"] == "http.response.start"
    assert any(b"content_chunk" in m.get("body", b"") for m in sent)
    assert source.closed >= 1  # by the relay, then (a no-op for a real source) the response
