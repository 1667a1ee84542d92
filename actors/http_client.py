"""One shared httpx client per process, on aiohttp's transport (far cheaper CPU per call).

Provider calls always verify certificates: against certifi's roots (or `SSL_CERT_FILE` /
`SSL_CERT_DIR`, as httpx reads them), plus the PEM file `CB_PROVIDER_CA_BUNDLE` when set.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from typing import Any

import httpx
from httpx_aiohttp import AiohttpTransport

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


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout: httpx.Timeout,
) -> httpx.Response:
    """POST `body` as JSON through the client's transport for `url` (a proxy's, if the
    environment names one), its response still streaming.

    The same request the client would send (its default headers, httpx's JSON encoding),
    without its cookie jar, auth and redirect layers: a provider call uses none of them, and
    they cost a tenant actor about a tenth of its CPU per execution (bench/README.md).
    """
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    sent = httpx.Headers(client.headers)
    sent["Content-Type"] = "application/json"
    sent.update(headers)
    request = httpx.Request(
        "POST", url, content=content.encode(), headers=sent,
        extensions={"timeout": timeout.as_dict()},
    )  # fmt: skip
    response = await client._transport_for_url(request.url).handle_async_request(request)
    response.request = request
    return response
