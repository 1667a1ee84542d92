"""One shared httpx client per process, on aiohttp's transport (far cheaper CPU per call).

Provider calls always verify certificates: against certifi's roots (or `SSL_CERT_FILE` /
`SSL_CERT_DIR`, as httpx reads them), plus the PEM file `CB_PROVIDER_CA_BUNDLE` when set.
The hot call (`post_json`) goes to that transport's aiohttp session directly, without
httpx's request and response objects; any other transport (a test's, a proxy's) gets the
request httpx would build.
"""

from __future__ import annotations

import functools
import json
import os
import ssl
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from multidict import CIMultiDict

from domain import fast_json

CA_BUNDLE_ENV = "CB_PROVIDER_CA_BUNDLE"

_client: httpx.AsyncClient | None = None
_warm_context: ssl.SSLContext | None = None  # made ahead by `warm` in a spare worker


def provider_ssl_context() -> ssl.SSLContext:
    """A verifying TLS context: the default roots, with `CB_PROVIDER_CA_BUNDLE` added."""
    context = httpx.create_ssl_context()  # verify=True: CERT_REQUIRED, hostnames checked
    bundle = os.environ.get(CA_BUNDLE_ENV)
    if bundle:
        try:
            context.load_verify_locations(cafile=bundle)
        except (OSError, ssl.SSLError) as exc:
            raise RuntimeError(
                f"{CA_BUNDLE_ENV}={bundle}: not a readable PEM file ({exc})"
            ) from exc
    return context


def warm() -> None:
    """Make the TLS context ahead of the first call (loading the roots takes tens of ms)."""
    global _warm_context
    _warm_context = provider_ssl_context()


def shared_client() -> httpx.AsyncClient:
    """The process's client; created lazily inside the running event loop."""
    global _client, _warm_context
    if _client is None or _client.is_closed:
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=256)
        context, _warm_context = _warm_context or provider_ssl_context(), None
        _client = httpx.AsyncClient(
            transport=AiohttpTransport(verify=context, limits=limits),
            limits=limits,
            verify=context,  # also for the transports of proxies named by the environment
        )
    return _client


class ProviderReply(Protocol):
    """What `post_json` answers: an `httpx.Response`, or `SessionReply`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...

    def json(self) -> Any: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class SessionReply:
    """An aiohttp response with the part of `httpx.Response` the provider call reads; its
    errors are httpx's, as the transport maps them (a refused connection: `ConnectTimeout`
    caused by `aiohttp.ClientConnectorError`)."""

    __slots__ = ("_body", "_response", "headers", "status_code")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._body = b""
        self.status_code = response.status
        self.headers = response.headers  # case-insensitive

    async def aread(self) -> bytes:
        with map_aiohttp_exceptions():
            self._body = await self._response.read()
        return self._body

    def json(self) -> Any:
        """The body read by `aread`, as JSON (ValueError if it is not)."""
        return fast_json.loads(self._body)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives, content-decoded, a network read at a time."""
        with map_aiohttp_exceptions():
            async for block in self._response.content.iter_any():
                yield block

    async def aclose(self) -> None:
        """Give the connection back, or close it if the body was not read to its end."""
        self._response.release()
        await self._response.wait_for_close()


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
) -> ProviderReply:
    """POST `body` as JSON through the client's transport for `url` (a proxy's, if the
    environment names one), its response still streaming.

    The same request the client would send (its default headers, httpx's JSON encoding),
    without its cookie jar, auth and redirect layers: a provider call uses none of them, and
    they cost a tenant actor about a tenth of its CPU per execution (bench/README.md). On
    aiohttp's own transport it goes to the session straight, without httpx's request and
    response objects.
    """
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    route = _routes.get(client)
    if route is None:
        route = _routes[client] = _Route(client)
    transport = route.transport(url)
    if isinstance(transport, AiohttpTransport) and transport.proxy is None:
        sent = route.headers.copy()
        sent.update(headers)
        return await _on_session(transport, url, content.encode(), sent, timeout)
    sent_headers = httpx.Headers(list(route.headers.items()))
    sent_headers.update(headers)
    request = httpx.Request(
        "POST", url, content=content.encode(), headers=sent_headers,
        extensions={"timeout": timeout.as_dict()},
    )  # fmt: skip
    response = await transport.handle_async_request(request)
    response.request = request
    return response


class _Route:
    """A client's default headers (with the JSON content type) and its transport by URL."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.headers = CIMultiDict(client.headers.multi_items())
        self.headers["Content-Type"] = "application/json"
        self.transports: dict[str, httpx.AsyncBaseTransport] = {}

    def transport(self, url: str) -> httpx.AsyncBaseTransport:
        found = self.transports.get(url)
        if found is None:
            found = self.transports[url] = self.client._transport_for_url(httpx.URL(url))
        return found


_routes: weakref.WeakKeyDictionary[httpx.AsyncClient, _Route] = weakref.WeakKeyDictionary()


async def _on_session(
    transport: AiohttpTransport,
    url: str,
    content: bytes,
    headers: CIMultiDict[str],
    timeout: httpx.Timeout,
) -> SessionReply:
    """The request on the transport's aiohttp session, answered as a `SessionReply`; the
    session decodes the body (gzip, deflate: what httpx's default headers offer)."""
    if not isinstance(transport.client, aiohttp.ClientSession):
        transport.client = transport.get_client()
    with map_aiohttp_exceptions():
        response = await transport.client.request(
            "POST", url, headers=headers, data=content, allow_redirects=False,
            timeout=_client_timeout(timeout.connect, timeout.read, timeout.pool),
        )  # fmt: skip
    return SessionReply(response)


@functools.lru_cache(maxsize=64)
def _client_timeout(
    connect: float | None, read: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    """httpx's timeouts as the transport hands them to aiohttp."""
    return aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
