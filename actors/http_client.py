"""One shared httpx client per process, on aiohttp's transport (far cheaper CPU per call).

Provider calls always verify certificates: against certifi's roots (or `SSL_CERT_FILE` /
`SSL_CERT_DIR`, as httpx reads them), plus the PEM file `CB_PROVIDER_CA_BUNDLE` when set.
The hot call (`post_json`) on that transport goes out on `actors.lean_http`'s keep-alive
connections with the transport's TLS context, without httpx's or aiohttp's request and
response objects; any other transport (a test's, a proxy's) gets the request httpx would
build.
"""

from __future__ import annotations

import json
import os
import ssl
import weakref
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

import httpx
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict

from actors.lean_http import LeanPool

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
    """What `post_json` answers: an `httpx.Response`, or `actors.lean_http.LeanReply`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def aread(self) -> bytes: ...

    def json(self) -> Any: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


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
    aiohttp's own transport it goes out on `actors.lean_http` (about half of aiohttp's CPU
    per call, bench/README.md).
    """
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    route = _routes.get(client)
    if route is None:
        route = _routes[client] = _Route(client)
    transport = route.transport(url)
    if isinstance(transport, AiohttpTransport) and transport.proxy is None:
        sent = route.headers.copy()
        sent.update(headers)
        return await route.lean(transport).post(url, content.encode(), sent, timeout)
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
        self._lean: LeanPool | None = None

    def lean(self, transport: AiohttpTransport) -> LeanPool:
        """The keep-alive connections of calls on aiohttp's transport (its TLS context)."""
        if self._lean is None:
            self._lean = LeanPool(transport.ssl_context)
        return self._lean

    def transport(self, url: str) -> httpx.AsyncBaseTransport:
        found = self.transports.get(url)
        if found is None:
            found = self.transports[url] = self.client._transport_for_url(httpx.URL(url))
        return found


_routes: weakref.WeakKeyDictionary[httpx.AsyncClient, _Route] = weakref.WeakKeyDictionary()
