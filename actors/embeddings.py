"""The gateway's client of an OpenAI-compatible embeddings endpoint (`POST {base}/embeddings`).

Pass the process's shared client (`actors.http_client.shared_client()`). Every failure is a
`ProviderError` (or one of its subclasses, as `domain.codecs.http_errors.map_status` maps a
status), and no error message ever carries the API key.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import struct
from typing import Any

import aiohttp
import httpx

from domain.codecs.http_errors import map_status
from domain.errors import CBError, ProviderError, ProviderTimeout
from domain.retry import retry_after_s


async def embed(
    http: httpx.AsyncClient,
    base_url: str,
    api_key: str | None,
    model: str,
    text: str,
    timeout_s: float = 10.0,
) -> list[float]:
    """The embedding of `text` by `model` at `base_url` (e.g. ``https://api.openai.com/v1``).

    Raises `ProviderTimeout` past `timeout_s`, `ProviderError` (or the subclass its status
    maps to) on a failed call, a non-2xx status or a reply without a usable vector.
    """
    url = base_url.rstrip("/") + "/embeddings"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    payload = {"model": model, "input": text, "encoding_format": "float"}
    try:
        async with asyncio.timeout(timeout_s):
            reply = await http.post(url, json=payload, headers=headers, timeout=timeout_s)
    except (TimeoutError, httpx.TimeoutException) as exc:
        # httpx-aiohttp reports a refused connection as ConnectTimeout; tell the two apart
        if isinstance(exc.__cause__, aiohttp.ClientConnectorError):
            raise ProviderError("could not reach the embeddings endpoint") from None
        raise ProviderTimeout(
            f"embeddings endpoint did not answer within {timeout_s:g} s"
        ) from None
    except httpx.HTTPError as exc:
        raise ProviderError(f"embeddings endpoint failed: {type(exc).__name__}") from None
    try:
        body: Any = reply.json()
    except ValueError:
        body = None
    if not 200 <= reply.status_code < 300:
        err = map_status(reply.status_code, body, retry_after_s(reply.headers))
        raise _scrubbed(err, api_key)
    vector = _vector(body)
    if vector is None:
        raise ProviderError("embeddings endpoint sent a malformed reply")
    return vector


def _vector(body: Any) -> list[float] | None:
    """The first embedding of an OpenAI `list` reply (floats, or base64 of little-endian
    float32 from a server that ignored `encoding_format`); None when there is none."""
    data = body.get("data") if isinstance(body, dict) else None
    first = data[0] if isinstance(data, list) and data else None
    raw = first.get("embedding") if isinstance(first, dict) else None
    if isinstance(raw, str):
        try:
            packed = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            return None
        if not packed or len(packed) % 4:
            return None
        raw = list(struct.unpack(f"<{len(packed) // 4}f", packed))
    if not isinstance(raw, list) or not raw:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
        return None
    vector = [float(v) for v in raw]
    return vector if all(math.isfinite(v) for v in vector) else None


def _scrubbed(err: CBError, api_key: str | None) -> CBError:
    """`err`, or a copy of it whose message has the API key masked (a provider may quote it)."""
    if not api_key or api_key not in err.message:
        return err
    return type(err)(err.message.replace(api_key, "***"), retry_after=err.retry_after)
