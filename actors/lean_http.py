"""The provider call's HTTP/1.1 client: keep-alive connections of this module's own, the
request written as one block, the response parsed by httptools (uvicorn's parser).

An aiohttp session cost 80-190 µs of the caller's CPU per call here, most of it in its
request and response objects; this costs about half (`bench/bench_provider_client.py`,
`bench/README.md`). It does what a provider call needs and no more: POST with a body, TLS
with the caller's context, chunked and content-encoded (gzip, deflate) answers, a connect
and a per-read timeout, and httpx's exceptions. No proxies, redirects or cookies: a call
through a proxy the environment names stays on httpx (`actors.http_client`).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httptools
import httpx
from multidict import CIMultiDict

from domain import fast_json

IDLE_PER_ORIGIN = 256  # keep-alive connections kept per scheme, host and port
IDLE_S = 4.0  # an idle connection older than this is closed, not reused (servers close
# theirs after ~5 s: uvicorn's default; a request on one they just closed is sent again)
SKIPPED = frozenset({"host", "content-length", "transfer-encoding"})  # written by the client


class _Target(NamedTuple):
    origin: tuple[str, str, int]  # scheme, host, port
    head: bytes  # the request line and Host header


class LeanPool:
    """Keep-alive connections by origin; `post` sends one request on an idle one or a new one."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, _Target] = {}

    async def post(
        self, url: str, content: bytes, headers: Mapping[str, str], timeout: httpx.Timeout
    ) -> LeanReply:
        """POST `content` to `url`; the reply once its status and headers are in, its body
        still streaming."""
        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = _target(url)
        request = b"".join((target.head, _header_block(headers, len(content)), content))
        conn = self._take_idle(target.origin)
        if conn is not None:
            try:
                return await conn.send(request, timeout.read)
            except _NothingReceived:  # the server closed the idle connection meanwhile
                pass
        conn = await self._connect(target.origin, timeout.connect)
        try:
            return await conn.send(request, timeout.read)
        except _NothingReceived as gone:
            raise httpx.RemoteProtocolError(
                "server closed the connection without answering"
            ) from gone

    def _take_idle(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = asyncio.get_running_loop().time()
        while idle:
            conn = idle.pop()
            if conn.usable() and now - conn.idle_since < IDLE_S:
                return conn
            conn.close()
        return None

    def release(self, conn: _Connection) -> None:
        """Keep `conn` for the next request to its origin (or close it past the limit)."""
        idle = self._idle.setdefault(conn.origin, [])
        if len(idle) < IDLE_PER_ORIGIN and conn.usable():
            conn.idle_since = asyncio.get_running_loop().time()
            idle.append(conn)
        else:
            conn.close()

    async def _connect(self, origin: tuple[str, str, int], timeout_s: float | None) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        conn = _Connection(self, origin)
        tls = self._context if scheme == "https" else None
        try:
            async with asyncio.timeout(timeout_s):
                await loop.create_connection(
                    lambda: conn, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError as exc:
            conn.close()
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn


class _NothingReceived(Exception):
    """The connection ended before any byte of an answer."""


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {url!r}")
    default = 443 if scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname
    authority = f"[{host}]" if ":" in host else host
    if port != default:
        authority = f"{authority}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    path = quote(path, safe="/?&=%:@!$'()*+,;-._~")  # what is not ASCII, percent-encoded
    head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
    return _Target((scheme, host, port), head)


def _header_block(headers: Mapping[str, str], length: int) -> bytes:
    lines = [f"{k}: {v}\r\n" for k, v in headers.items() if k.lower() not in SKIPPED]
    lines.append(f"Content-Length: {length}\r\n\r\n")
    block = "".join(lines)
    breaks = len(lines) + 1  # one per line, and the blank line
    if block.count("\n") != breaks or block.count("\r") != breaks:
        raise httpx.LocalProtocolError("a header name or value holds a line break")
    try:
        return block.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise httpx.LocalProtocolError("a header value is not latin-1 text") from exc


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer fed to a `LeanReply`."""

    def __init__(self, pool: LeanPool, origin: tuple[str, str, int]) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.reply: LeanReply | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: Any = None

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    async def send(self, request: bytes, read_s: float | None) -> LeanReply:
        assert self.transport is not None
        reply = self.reply = LeanReply(self, read_s)
        self._parser = httptools.HttpResponseParser(self)
        self.transport.write(request)
        try:
            await reply.headers_in()
        except BaseException:
            self.close()
            raise
        return reply

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's: no subclass

    def data_received(self, data: bytes) -> None:
        reply = self.reply
        if reply is None or reply.complete:  # nothing asked: a server that talks out of turn
            self.close()
            return
        reply.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.close()
            reply.fail(httpx.RemoteProtocolError(f"invalid response: {exc}"))

    def eof_received(self) -> bool:
        return False  # close our end too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        reply = self.reply
        if reply is None or reply.complete:
            return
        if not reply.received:
            reply.fail(_NothingReceived())
        elif reply.ends_at_close():  # neither a length nor chunks: the body ends here
            reply.done()
        else:
            reply.fail(httpx.ReadError("the server closed the connection mid-answer"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.reply is not None
        self.reply.raw_headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        assert self.reply is not None
        self.reply.status_code = self._parser.get_status_code()
        self.reply.headers_done()

    def on_body(self, body: bytes) -> None:
        assert self.reply is not None
        self.reply.body(body)

    def on_message_complete(self) -> None:
        assert self.reply is not None
        self.reply.keep_alive = self._parser.should_keep_alive()
        self.reply.done()


class LeanReply:
    """The part of `httpx.Response` a provider call reads: status, headers, the body whole
    (`aread`, `json`) or as it arrives (`aiter_bytes`), content-decoded; `aclose` gives the
    connection back, or closes it when the body was not read to its end."""

    def __init__(self, conn: _Connection, read_s: float | None) -> None:
        self._conn = conn
        self._read_s = read_s
        self.status_code = 0
        self.raw_headers: list[tuple[str, str]] = []
        self.headers: CIMultiDict[str] = CIMultiDict()
        self.received = False
        self.complete = False
        self.keep_alive = False
        self._has_headers = False
        self._chunks: collections.deque[bytes] = collections.deque()
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._decoder: Any = None
        self._body = b""

    # fed by the connection

    def headers_done(self) -> None:
        self.headers = CIMultiDict(self.raw_headers)
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = _Deflate()
        self._has_headers = True
        self._wake()

    def ends_at_close(self) -> bool:
        """Whether the body is delimited by the connection's end (HTTP/1.0 style)."""
        return (
            self._has_headers
            and "content-length" not in self.headers
            and "chunked" not in self.headers.get("transfer-encoding", "").lower()
        )

    def body(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def done(self) -> None:
        self.complete = True
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _next(self) -> None:
        """Wait for what the connection brings next (or fail after the read timeout)."""
        if self._error is not None:
            raise self._error
        loop = asyncio.get_running_loop()
        waiter = self._waiter = loop.create_future()
        timer = None
        if self._read_s is not None:
            timer = loop.call_later(self._read_s, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self._error is not None:
            raise self._error

    async def headers_in(self) -> None:
        while not self._has_headers:
            await self._next()

    # read by the provider call

    async def aread(self) -> bytes:
        while not self.complete:
            await self._next()
        self._body = self._decoded(b"".join(self._chunks), final=True)
        self._chunks.clear()
        return self._body

    def json(self) -> Any:
        """The body read by `aread`, as JSON (ValueError if it is not)."""
        return fast_json.loads(self._body)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        while True:
            if self._chunks:
                data = self._decoded(b"".join(self._chunks), final=False)
                self._chunks.clear()
                if data:
                    yield data
            elif self.complete:
                tail = self._decoded(b"", final=True)
                if tail:
                    yield tail
                return
            else:
                await self._next()

    async def aclose(self) -> None:
        conn = self._conn
        if self.complete and self.keep_alive and self._error is None:
            conn.reply = None
            conn.pool.release(conn)
        else:
            conn.close()

    def _decoded(self, data: bytes, final: bool) -> bytes:
        if self._decoder is None:
            return data
        try:
            out = self._decoder.decompress(data)
            if final:
                out += self._decoder.flush()
        except zlib.error as exc:
            raise httpx.DecodingError(f"invalid {self.headers['content-encoding']} body") from exc
        return out


class _Deflate:
    """`deflate` as servers send it: zlib-wrapped, or raw (decided by the first bytes)."""

    def __init__(self) -> None:
        self._inner: Any = None

    def decompress(self, data: bytes) -> bytes:
        if self._inner is None:
            try:
                self._inner = zlib.decompressobj()
                return self._inner.decompress(data)
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return self._inner.decompress(data)

    def flush(self) -> bytes:
        return self._inner.flush() if self._inner is not None else b""


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(httpx.ReadTimeout("no data from the server within the read timeout"))
