"""`actors.http_client.post_json`: the provider call's request, sent straight to the client's
transport (on aiohttp's, to its session, against a real local server), is the request the
client itself would have built, and its answers and failures read as before."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from actors.http_client import SessionReply, post_json
from domain.retry import retry_after_s

BODY = {"model": "m", "messages": [{"role": "user", "content": "héllo"}], "n": 1}


async def test_the_request_is_the_one_the_client_would_build_and_nothing_is_kept() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True}, headers={"set-cookie": "s=1; Path=/"})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    headers = {"Authorization": "Bearer sk-test", "content-type": "application/json"}
    timeout = httpx.Timeout(7.0, connect=2.0)
    reply = await post_json(client, "http://provider.test/v1/chat", BODY, headers, timeout)
    await reply.aread()
    built = client.build_request(
        "POST", "http://provider.test/v1/chat", json=BODY, headers=headers, timeout=timeout
    )
    [sent] = seen
    assert sent.content == built.content  # httpx's own JSON encoding, byte for byte
    assert json.loads(sent.content) == BODY
    assert sorted(sent.headers.multi_items()) == sorted(built.headers.multi_items())
    assert sent.extensions["timeout"] == built.extensions["timeout"]
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    assert reply.request is sent
    assert not client.cookies  # a provider's cookie is not carried to the next call
    await client.aclose()


@contextlib.asynccontextmanager
async def _provider(handler: Any) -> AsyncIterator[tuple[str, list[tuple[web.Request, bytes]]]]:
    """A real HTTP server on 127.0.0.1 answering POST /v1/chat with `handler`; what it was
    sent, with the bodies."""
    seen: list[tuple[web.Request, bytes]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request, await request.read()))
        return await handler(request)

    app = web.Application()
    app.router.add_post("/v1/chat", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1/chat", seen
    finally:
        await runner.cleanup()


def _aiohttp_client() -> httpx.AsyncClient:
    """As `shared_client` builds it: httpx on aiohttp's transport."""
    return httpx.AsyncClient(transport=AiohttpTransport())


TIMEOUT = httpx.Timeout(5.0, connect=2.0)


async def test_on_aiohttp_the_call_goes_to_its_session_with_the_same_request() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": "ü"})

    async with _provider(ok) as (url, seen):
        client = _aiohttp_client()
        headers = {"Authorization": "Bearer sk-test"}
        reply = await post_json(client, url, BODY, headers, TIMEOUT)
        assert isinstance(reply, SessionReply)  # no httpx.Response on this path
        await reply.aread()
        await reply.aclose()
        assert reply.status_code == 200 and reply.json() == {"ok": "ü"}
        built = client.build_request("POST", url, json=BODY, headers=headers)
        [(sent, body)] = seen
        assert body == built.content  # httpx's own JSON encoding, byte for byte
        for name in ("authorization", "content-type", "user-agent", "accept-encoding"):
            assert sent.headers[name] == built.headers[name], name
        await client.aclose()


async def test_on_aiohttp_a_gzipped_stream_arrives_decoded_read_by_read() -> None:
    lines = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        response.enable_compression(web.ContentCoding.gzip)
        await response.prepare(request)
        for line in lines:
            await response.write(line)
            await asyncio.sleep(0.01)
        await response.write_eof()
        return response

    async with _provider(stream) as (url, _):
        client = _aiohttp_client()
        reply = await post_json(client, url, BODY, {}, TIMEOUT)
        got = b"".join([block async for block in reply.aiter_bytes()])
        await reply.aclose()
        assert got == b"".join(lines)
        await client.aclose()


async def test_on_aiohttp_an_error_keeps_its_status_body_and_retry_after() -> None:
    async def limited(request: web.Request) -> web.Response:
        body = {"error": {"type": "rate_limit"}}
        return web.json_response(body, status=429, headers={"Retry-After": "3"})

    async with _provider(limited) as (url, _):
        client = _aiohttp_client()
        reply = await post_json(client, url, BODY, {}, TIMEOUT)
        await reply.aread()
        await reply.aclose()
        assert reply.status_code == 429 and reply.json() == {"error": {"type": "rate_limit"}}
        assert retry_after_s(reply.headers) == 3.0
        await client.aclose()


async def test_on_aiohttp_failures_are_httpx_errors_as_the_transport_maps_them() -> None:
    """A refused connection is the transport's ConnectTimeout caused by aiohttp's connector
    error (what `model_calls` tells apart as unreachable); a silent provider a ReadTimeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = _aiohttp_client()
    with pytest.raises(httpx.ConnectTimeout) as refused:
        await post_json(client, f"http://127.0.0.1:{port}/v1/chat", BODY, {}, TIMEOUT)
    assert isinstance(refused.value.__cause__, aiohttp.ClientConnectorError)

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    async with _provider(silent) as (url, _):
        with pytest.raises(httpx.TimeoutException):
            await post_json(client, url, BODY, {}, httpx.Timeout(0.2, connect=2.0))
    await client.aclose()
