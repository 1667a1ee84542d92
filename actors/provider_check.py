"""A real health check of one provider, run from a tenant actor (where provider HTTP runs):
an authenticated GET of its model listing, under a permit of its provider actor, whose
outcome is reported like any attempt's (so the actor's `last_check` is a real check's)."""

from __future__ import annotations

import time
from typing import Any

import httpx

from actors.model_calls import ModelCaller
from actors.settings import provider_api_key, provider_base_url
from domain.codecs import codec_for
from domain.errors import CBError, NotFound, ProviderError
from domain.provider_probe import CHECK_MODEL, probe_request
from domain.retry import retry_after_s


async def check_provider(caller: ModelCaller, provider: str) -> dict[str, Any]:
    """Check `provider` once: `{"provider", "ok", "checked_at" (unix s), "latency_ms",
    "error"}` (`error` the gateway's error type, or None). A refusal of the permit (breaker
    open, rate limit) is the check's answer; no request is sent then."""
    spec = caller.config.providers.get(provider)
    if spec is None:
        raise NotFound(f"provider {provider!r} is not configured")
    lease = caller._lease(provider)  # the same lease executions take permits from
    refusal = await lease.take(spec.connect_timeout_s)
    if refusal is not None:
        err = CBError.from_dict(refusal["error"])
        return _answer(provider, False, 0.0, err.type)
    path, headers = probe_request(spec, caller.own_keys.get(provider) or provider_api_key(spec))
    started = time.perf_counter()
    error: CBError | None = None
    retry_after = None
    try:
        timeout = httpx.Timeout(spec.connect_timeout_s * 2, connect=spec.connect_timeout_s)
        reply = await caller.http().get(
            provider_base_url(spec) + path, headers=headers, timeout=timeout
        )
        if not 200 <= reply.status_code < 300:
            retry_after = retry_after_s(reply.headers)
            error = codec_for(spec.type).map_error(reply.status_code, _json(reply), retry_after)
    except (httpx.HTTPError, TimeoutError) as exc:
        error = ProviderError(f"provider {provider} did not answer: {type(exc).__name__}")
    latency_ms = (time.perf_counter() - started) * 1000
    kind = error.type if error else None
    lease.done(error is None, latency_ms, kind, retry_after, CHECK_MODEL)
    return _answer(provider, error is None, latency_ms, kind)


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
