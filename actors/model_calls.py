"""Calls a route's models over HTTP: credits, retries with backoff, fallback, parsing.

Whole replies and streams share one attempt loop. A model's provider may have several
endpoints: an attempt takes the one its balancer picks, a failed one fails over to the next
at once, and once each has been tried the retries go round them again with back-off, all
before the next model. A stream is retried or falls back only until its first content
chunk has gone out; after that a failure ends it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import httpx

from actors import metrics, tracing
from actors.http_client import ProviderReply, post_json
from actors.provider_lease import ProviderLease
from actors.routing_view import RoutingView
from actors.settings import provider_api_key, provider_base_url
from domain.codecs import codec_for
from domain.config import Config, Endpoint
from domain.endpoints import Balancer
from domain.errors import (
    CBError,
    CircuitOpen,
    ProviderAuthenticationFailed,
    ProviderError,
    ProviderTimeout,
)
from domain.llm import ChatMessage, LLMRequest, LLMResponse, StreamChunk
from domain.results import Attempt
from domain.retry import backoff_s, retry_after_s


@dataclass
class CallOutcome:
    """What happened across attempts; `response` is set when a whole reply succeeded."""

    attempts: list[Attempt] = field(default_factory=list)
    response: LLMResponse | None = None
    model: str | None = None
    provider: str | None = None
    dropped_parameters: list[str] = field(default_factory=list)
    adjusted_parameters: dict[str, Any] = field(default_factory=dict)
    delivered: bool = False  # a stream's content already reached the client

    def absorb(self, turn: CallOutcome) -> None:
        """Fold one turn of a tool loop into the execution's outcome."""
        self.attempts.extend(turn.attempts)
        self.model, self.provider = turn.model or self.model, turn.provider or self.provider
        self.dropped_parameters = turn.dropped_parameters
        self.adjusted_parameters = turn.adjusted_parameters
        self.delivered = self.delivered or turn.delivered


class ModelCaller:
    """Owned by a tenant actor. `provider(name)` gives a provider actor's handle (for its
    permits); `http()` the HTTP client the calls go through."""

    def __init__(
        self,
        config: Config,
        routing: RoutingView,
        provider: Callable[[str], Any],
        http: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.config = config
        self.routing = routing
        self.provider = provider
        self.http = http
        self.leases: dict[str, ProviderLease] = {}
        self.own_keys: dict[str, str] = {}  # the tenant's own provider keys, in memory only
        self.tenant_id: str | None = None  # for the metrics' tenant label
        # each provider's endpoints this tenant can call, and their keys by provider
        self.usable: dict[str, tuple[Endpoint, ...]] = {}
        self.balancer = Balancer()
        self.in_flight: dict[str, int] = {}  # attempts under way, by endpoint key

    def use_endpoints(self, endpoints: Iterable[Endpoint]) -> None:
        """The endpoints calls may use (configured, or keyed by the tenant's own key)."""
        usable: dict[str, list[Endpoint]] = {}
        for endpoint in endpoints:
            usable.setdefault(endpoint.provider, []).append(endpoint)
        self.usable = {p: tuple(found) for p, found in usable.items()}

    @property
    def endpoint_keys(self) -> dict[str, tuple[str, ...]]:
        """Each usable provider's endpoint keys (the routing view asks their actors)."""
        return {p: tuple(e.key for e in found) for p, found in self.usable.items()}

    def endpoints_of(self, provider: str) -> tuple[Endpoint, ...]:
        """The provider's endpoints this tenant can call (all configured ones, if none)."""
        return self.usable.get(provider) or self.config.endpoints(provider)

    def _lease(self, provider: str) -> ProviderLease:
        lease = self.leases.get(provider)
        if lease is None:
            lease = ProviderLease(self.provider(provider), provider, self.routing)
            self.leases[provider] = lease
        return lease

    async def complete(
        self,
        chain: list[str],
        messages: list[ChatMessage],
        parameters: dict[str, Any],
        tools: list[dict[str, Any]] | None = None,
    ) -> CallOutcome:
        """The first whole reply along the chain; raises the last error if none came."""
        outcome = CallOutcome()
        async for reply in self._run(chain, messages, parameters, outcome, False, tools):
            assert isinstance(reply, LLMResponse)
            outcome.response = reply
        return outcome

    async def stream(
        self,
        chain: list[str],
        messages: list[ChatMessage],
        parameters: dict[str, Any],
        outcome: CallOutcome,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[StreamChunk]:
        """Stream chunks from the first model that answers; `outcome` records the attempts."""
        async for chunk in self._run(chain, messages, parameters, outcome, True, tools):
            assert isinstance(chunk, StreamChunk)
            yield chunk

    async def _run(
        self,
        chain: list[str],
        messages: list[ChatMessage],
        parameters: dict[str, Any],
        outcome: CallOutcome,
        stream: bool,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[LLMResponse | StreamChunk]:
        last: CBError = ProviderError("no attempt was made")
        for model_name in chain:
            try:
                async for item in self._try_model(
                    model_name, messages, parameters, outcome, stream, tools
                ):
                    yield item
                return
            except CBError as err:
                last = err
                if outcome.delivered or not (
                    err.retryable or isinstance(err, ProviderAuthenticationFailed)
                ):
                    break
        last.details = {"attempts": [a.model_dump() for a in outcome.attempts]}
        raise last

    async def _try_model(
        self,
        model_name: str,
        messages: list[ChatMessage],
        parameters: dict[str, Any],
        outcome: CallOutcome,
        stream: bool,
        tools: list[dict[str, Any]] | None = None,
    ) -> AsyncIterator[LLMResponse | StreamChunk]:
        model = self.config.models[model_name]
        shared = self.config.providers[model.provider]
        codec = codec_for(shared.type)
        request = LLMRequest(
            model=model_name,
            messages=messages,
            parameters=parameters,
            stream=stream,
            tools=tools or [],
        )
        wire_model = self.config.wire_model(model_name, os.environ)
        endpoints = self.endpoints_of(model.provider)
        order = self.balancer.order(
            endpoints, shared.balance, self.in_flight, self.routing.open_endpoints
        )
        calls: dict[str, tuple[Any, str]] = {}
        loop = asyncio.get_running_loop()
        rounds = len(order)
        for attempt in range(shared.max_retries + rounds):
            endpoint = order[attempt % rounds]
            spec, key = endpoint.spec, endpoint.key
            built = calls.get(key)
            if built is None:
                call, params = codec.build_call(
                    request,
                    model,
                    wire_model,
                    self.own_keys.get(model.provider) or provider_api_key(spec),
                    spec,
                )
                if not calls:
                    outcome.dropped_parameters = params.dropped
                    outcome.adjusted_parameters = params.adjusted
                built = calls[key] = (call, provider_base_url(spec) + call.path)
            call, url = built
            timeout = httpx.Timeout(spec.timeout_s, connect=spec.connect_timeout_s)
            lease = self._lease(key)
            # a CLIENT span per attempt (None when tracing is off)
            trace = tracing.start_attempt(
                spec, model.provider, model_name, wire_model, url, parameters, stream
            )
            asked = time.perf_counter()
            refusal = await lease.take(spec.timeout_s)
            record = Attempt(
                model=model_name,
                provider=model.provider,
                endpoint=endpoint.name,
                permit_ms=_ms_since(asked),
            )
            outcome.attempts.append(record)
            if refusal is not None:
                err = CBError.from_dict(refusal["error"])
                if isinstance(err, CircuitOpen):
                    self.routing.mark_open(key)
                record.error = err.type
                metrics.attempt_done(self.tenant_id, key, spec.type, model_name, "", err.type, None)
                if trace is not None:
                    trace.end(err.type)
                if attempt + 1 < rounds:
                    continue  # another endpoint may grant one
                raise err
            started = time.perf_counter()
            deadlines = _Deadlines(loop.time(), spec.first_token_timeout_s, spec.timeout_s)
            err: CBError | None = None
            usage, response_model = None, ""
            self.in_flight[key] = self.in_flight.get(key, 0) + 1
            try:
                client = self.http()
                headers = call.headers
                traceparent = tracing.traceparent_for(trace and trace.span)
                if traceparent is not None:
                    headers = {**headers, "traceparent": traceparent}
                async with asyncio.timeout_at(deadlines.first):
                    reply = await post_json(client, url, call.body, headers, timeout)
                try:
                    if reply.status_code != 200:
                        async with asyncio.timeout_at(deadlines.total):
                            await reply.aread()
                        err = codec.map_error(
                            reply.status_code, _json_or_none(reply), retry_after_s(reply.headers)
                        )
                    else:
                        outcome.model, outcome.provider = model_name, model.provider
                        if stream:
                            async for chunk in _chunks(codec, reply, deadlines):
                                if chunk.delta and record.ttft_ms is None:
                                    record.ttft_ms = _ms_since(started)
                                outcome.delivered = outcome.delivered or bool(chunk.delta)
                                usage = chunk.usage or usage
                                if trace is not None:
                                    trace.chunk(chunk)
                                yield chunk
                        else:
                            body = await _whole_body(reply, deadlines.total)
                            response = codec.parse_response(body)
                            usage, response_model = response.usage, response.provider_model
                            if trace is not None:
                                trace.reply(response)
                            yield response
                finally:
                    await reply.aclose()
            except TimeoutError:
                err = ProviderTimeout(deadlines.missed(loop.time(), key))
            except (httpx.TimeoutException, httpx.ConnectError) as exc:
                err = _timeout_or_unreachable(exc, key)
            except httpx.HTTPError as exc:
                err = ProviderError(f"provider {key} failed: {type(exc).__name__}")
            except CBError as exc:
                err = exc
            finally:
                self.in_flight[key] -= 1
                latency_ms = (time.perf_counter() - started) * 1000
                record.latency_ms, record.error = round(latency_ms, 3), err.type if err else None
                lease.done(
                    err is None,
                    latency_ms,
                    err.type if err else None,
                    err.retry_after if err else None,
                    model_name,
                )
                ttfc = record.ttft_ms / 1000 if record.ttft_ms is not None else None
                metrics.attempt_done(self.tenant_id, key, spec.type, model_name,
                                     response_model, record.error, latency_ms / 1000, ttfc,
                                     usage)  # fmt: skip
                if trace is not None:
                    trace.end(record.error)
            if err is None:
                return
            if outcome.delivered:
                raise err
            if attempt + 1 < rounds and (
                err.retryable or isinstance(err, ProviderAuthenticationFailed)
            ):
                continue  # fail over to the next endpoint at once (another key may work)
            if not err.retryable or attempt + 1 == shared.max_retries + rounds:
                raise err
            await asyncio.sleep(
                backoff_s(
                    attempt + 1 - rounds,
                    spec.retry_backoff_s,
                    err.retry_after,
                    spec.max_retry_after_s,
                )
            )


class _Deadlines:
    """An attempt's two clocks (event-loop time): the first token, and the whole reply."""

    def __init__(self, now: float, first_token_s: float, total_s: float) -> None:
        self.first_token_s, self.total_s = first_token_s, total_s
        self.first, self.total = now + min(first_token_s, total_s), now + total_s
        self.got_first = False

    def current(self) -> float:
        return self.total if self.got_first else self.first

    def missed(self, now: float, provider: str) -> str:
        if not self.got_first and now < self.total:
            return f"provider {provider} sent no first token within {self.first_token_s:g} s"
        return f"provider {provider} did not finish within {self.total_s:g} s"


async def _chunks(
    codec: Any, reply: ProviderReply, deadlines: _Deadlines
) -> AsyncIterator[StreamChunk]:
    """Parsed chunks until one marked `last`; a stream cut off before it is a provider failure.

    Each read from the network is awaited under the first-token deadline until content
    arrives, then under the total one (a timer per read, no task); the lines of what one
    read brought are parsed without another wait.
    """
    blocks = reply.aiter_bytes()  # content-decoded (a provider may gzip its stream)
    rest = b""
    while True:
        try:
            async with asyncio.timeout_at(deadlines.current()):
                block = await anext(blocks)
        except StopAsyncIteration:
            block = None
        lines, rest = split_lines(rest, block)
        for line in lines:
            parsed = codec.parse_stream_line(line)
            if parsed is None:
                continue
            if not deadlines.got_first and (
                parsed.delta or parsed.tool_call_deltas or parsed.last
            ):
                deadlines.got_first = True
            yield parsed
            if parsed.last:
                return
        if block is None:
            raise ProviderError("provider stream ended before it was complete")


def split_lines(rest: bytes, block: bytes | None) -> tuple[list[str], bytes]:
    """The whole lines of `rest + block` (ended by LF, CRLF or CR, as SSE and NDJSON allow)
    and the unfinished tail; `block` None (the stream ended) makes the tail a last line."""
    data = rest + block if block is not None else rest
    if not data:
        return [], b""
    parts = data.splitlines(keepends=True)
    tail = b""
    if block is not None and not parts[-1].endswith((b"\n", b"\r")):
        tail = parts.pop()
    return [part.rstrip(b"\r\n").decode("utf-8", "replace") for part in parts], tail


async def _whole_body(reply: ProviderReply, deadline: float) -> Any:
    """The reply's JSON, read by `deadline` (loop time); a body already in whole (a
    `lean_http` reply that came in one piece: the usual case) is read without a timer."""
    if not getattr(reply, "complete", False):
        async with asyncio.timeout_at(deadline):
            await reply.aread()
    else:
        await reply.aread()  # returns at once: nothing is left to wait for
    return _json_or_none(reply)


def _timeout_or_unreachable(
    exc: httpx.TimeoutException | httpx.ConnectError, provider: str
) -> CBError:
    # a refused connection: ConnectError from `actors.lean_http`; httpx-aiohttp (a call
    # through a proxy) reports it as ConnectTimeout caused by aiohttp's connector error
    if isinstance(exc, httpx.ConnectError) or isinstance(
        exc.__cause__, aiohttp.ClientConnectorError
    ):
        return ProviderError(f"could not reach provider {provider}: connection failed")
    return ProviderTimeout(f"provider {provider} did not answer in time")


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 3)


def _json_or_none(reply: ProviderReply) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None
