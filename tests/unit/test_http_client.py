"""`actors.http_client.post_json`: the provider call's request, sent straight to the client's
transport (on aiohttp's, on `actors.lean_http`'s keep-alive connections, against a real
local server), is the request the client itself would have built, and its answers and
failures read as before."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web
from httpx_aiohttp import AiohttpTransport

from actors.http_client import post_json
from actors.lean_http import LeanReply
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
async def _provider(
    handler: Any, keepalive_s: float = 75.0
) -> AsyncIterator[tuple[str, list[tuple[web.Request, bytes]]]]:
    """A real HTTP server on 127.0.0.1 answering POST /v1/chat with `handler`; what it was
    sent, with the bodies."""
    seen: list[tuple[web.Request, bytes]] = []

    async def answer(request: web.Request) -> web.StreamResponse:
        seen.append((request, await request.read()))
        return await handler(request)

    app = web.Application()
    app.router.add_post("/v1/chat", answer)
    runner = web.AppRunner(app, keepalive_timeout=keepalive_s)
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


async def test_on_aiohttp_the_call_goes_out_on_a_lean_connection_with_the_same_request() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": "ü"})

    async with _provider(ok) as (url, seen):
        client = _aiohttp_client()
        headers = {"Authorization": "Bearer sk-test"}
        reply = await post_json(client, url, BODY, headers, TIMEOUT)
        assert isinstance(reply, LeanReply)  # no httpx.Response, no aiohttp session
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


async def test_failures_are_httpx_errors() -> None:
    """A refused connection is a ConnectError (what `model_calls` tells apart as unreachable);
    a silent provider a ReadTimeout."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client = _aiohttp_client()
    with pytest.raises(httpx.ConnectError) as refused:
        await post_json(client, f"http://127.0.0.1:{port}/v1/chat", BODY, {}, TIMEOUT)
    assert isinstance(refused.value.__cause__, ConnectionRefusedError)

    async def silent(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({})

    async with _provider(silent) as (url, _):
        with pytest.raises(httpx.ReadTimeout):
            await post_json(client, url, BODY, {}, httpx.Timeout(0.2, connect=2.0))
    await client.aclose()


async def test_calls_share_a_kept_alive_connection_and_one_the_server_closed_is_not_reused() -> (
    None
):
    peers: list[Any] = []

    async def ok(request: web.Request) -> web.Response:
        assert request.transport is not None
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"ok": True})

    async with _provider(ok, keepalive_s=0.3) as (url, _):
        client = _aiohttp_client()
        for _ in range(3):
            reply = await post_json(client, url, BODY, {}, TIMEOUT)
            await reply.aread()
            await reply.aclose()
        await asyncio.sleep(0.6)  # past the server's keep-alive: it closes the connection
        reply = await post_json(client, url, BODY, {}, TIMEOUT)
        await reply.aread()
        await reply.aclose()
        assert reply.status_code == 200 and reply.json() == {"ok": True}
        assert peers[0] == peers[1] == peers[2] != peers[3]
        await client.aclose()


async def test_a_stream_left_before_its_end_closes_its_connection() -> None:
    """A reply given back before its body ended (a cancelled stream) is not reused: its
    connection closes, and the server sees the cut."""
    cut = asyncio.Event()

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b"data: more\n\n")
                await asyncio.sleep(0.01)
        except (ConnectionError, asyncio.CancelledError):
            cut.set()
            raise

    async with _provider(endless) as (url, _):
        client = _aiohttp_client()
        reply = await post_json(client, url, BODY, {}, TIMEOUT)
        blocks = reply.aiter_bytes()
        assert (await anext(blocks)).startswith(b"data: more")
        await reply.aclose()
        await asyncio.wait_for(cut.wait(), 5)
        await client.aclose()


async def test_a_body_that_ends_with_the_connection_is_read_whole() -> None:
    """A server that sends neither a length nor chunks ends its body by closing."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"ok": ')
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"true}")
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = _aiohttp_client()
    reply = await post_json(client, f"http://127.0.0.1:{port}/v1/chat", BODY, {}, TIMEOUT)
    await reply.aread()
    await reply.aclose()
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    server.close()
    await client.aclose()


async def test_a_header_with_a_line_break_is_refused_before_anything_is_sent() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    async with _provider(ok) as (url, seen):
        client = _aiohttp_client()
        with pytest.raises(httpx.LocalProtocolError):
            await post_json(client, url, BODY, {"X-Key": "a\r\nX-Evil: 1"}, TIMEOUT)
        assert not seen
        await client.aclose()


def test_on_uvloop_as_in_the_actors() -> None:
    """The tenant actors run on uvloop, whose transports are no `asyncio.Transport`."""
    import uvloop

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def calls() -> list[Any]:
        async with _provider(ok) as (url, _):
            client = _aiohttp_client()
            answers = []
            for _ in range(2):  # a new connection, then the kept one
                reply = await post_json(client, url, BODY, {}, TIMEOUT)
                answers.append(json.loads(await reply.aread()))
                await reply.aclose()
            await client.aclose()
            return answers

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(calls()) == [{"ok": True}, {"ok": True}]
    finally:
        loop.close()


def test_the_request_line_and_host_of_a_url() -> None:
    from actors.lean_http import _target

    assert _target("https://api.test/v1/chat").head == (
        b"POST /v1/chat HTTP/1.1\r\nHost: api.test\r\n"
    )
    gemini = _target("http://[::1]:8080/v1beta/models/m:streamGenerateContent?alt=sse")
    assert gemini.origin == ("http", "::1", 8080)
    assert gemini.head.startswith(b"POST /v1beta/models/m:streamGenerateContent?alt=sse HTTP")
    assert b"Host: [::1]:8080\r\n" in gemini.head
    assert _target("https://x.test/d\u00e9p loy").head.startswith(b"POST /d%C3%A9p%20loy HTTP")
    with pytest.raises(httpx.UnsupportedProtocol):
        _target("ftp://x.test/")
