"""A real health check of a provider: an authenticated GET of its model listing (`probe`).

An operator's check runs from a tenant actor (where provider HTTP runs), under a permit of
the provider actor, and its outcome is reported like any attempt's (so the actor's
`last_check` is a real check's); a provider actor's active probes send the same request."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import httpx

from actors.settings import provider_api_key, provider_base_url
from domain.codecs import codec_for
from domain.config import Endpoint, ProviderSpec
from domain.errors import CBError, NotFound, ProviderError
from domain.provider_probe import CHECK_MODEL, probe_request
from domain.retry import retry_after_s

if TYPE_CHECKING:
    from actors.model_calls import ModelCaller


async def check_provider(caller: ModelCaller, provider: str) -> dict[str, Any]:
    """Check `provider` once: `{"provider", "ok", "checked_at" (unix s), "latency_ms",
    "error"}` (`error` the gateway's error type, or None). A refusal of the permit (breaker
    open, rate limit) is the check's answer; no request is sent then. A provider with
    several endpoints checks each (`endpoints`); it is ok when one is."""
    if caller.config.providers.get(provider) is None:
        raise NotFound(f"provider {provider!r} is not configured")
    endpoints = caller.endpoints_of(provider)
    answers = [await _check(caller, provider, e) for e in endpoints]
    if len(answers) == 1:
        return answers[0]
    ok = [a for a in answers if a["ok"]]
    return {
        **_answer(
            provider,
            bool(ok),
            min((a["latency_ms"] for a in ok), default=0.0),
            None if ok else answers[0]["error"],
        ),
        "endpoints": answers,
    }


async def _check(caller: ModelCaller, provider: str, endpoint: Endpoint) -> dict[str, Any]:
    lease = caller._lease(endpoint.key)  # the same lease executions take permits from
    spec = endpoint.spec
    refusal = await lease.take(spec.connect_timeout_s)
    name = endpoint.key if endpoint.name else provider
    if refusal is not None:
        return _answer(name, False, 0.0, CBError.from_dict(refusal["error"]).type)
    key = caller.own_keys.get(provider) or provider_api_key(spec)
    latency_ms, error, retry_after = await probe(caller.http(), spec, key, name)
    kind = error.type if error else None
    lease.done(error is None, latency_ms, kind, retry_after, CHECK_MODEL)
    return _answer(name, error is None, latency_ms, kind)


async def probe(
    http: httpx.AsyncClient, spec: ProviderSpec, api_key: str | None, name: str
) -> tuple[float, CBError | None, float | None]:
    """One authenticated GET of the endpoint's model listing: its latency in ms, the error
    it ended in (None: answered 2xx) and the Retry-After it gave."""
    path, headers = probe_request(spec, api_key)
    started = time.perf_counter()
    error: CBError | None = None
    retry_after = None
    try:
        timeout = httpx.Timeout(spec.connect_timeout_s * 2, connect=spec.connect_timeout_s)
        reply = await http.get(provider_base_url(spec) + path, headers=headers, timeout=timeout)
        if not 200 <= reply.status_code < 300:
            retry_after = retry_after_s(reply.headers)
            error = codec_for(spec.type).map_error(reply.status_code, _json(reply), retry_after)
    except (httpx.HTTPError, TimeoutError) as exc:
        error = ProviderError(f"provider {name} did not answer: {type(exc).__name__}")
    except ProviderError as exc:  # its URL is refused
        error = exc
    return (time.perf_counter() - started) * 1000, error, retry_after


def _answer(provider: str, ok: bool, latency_ms: float, error: str | None) -> dict[str, Any]:
    return {
        "provider": provider,
        "ok": ok,
        "checked_at": time.time(),
        "latency_ms": round(latency_ms, 3),
        "error": error,
    }


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None
