"""ModelCaller, in-process: retries, fallback and permits over a MockTransport provider."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest

from actors import model_calls, provider_lease
from actors.model_calls import CallOutcome, ModelCaller
from actors.routing_view import RoutingView
from domain.config import parse_config
from domain.errors import CircuitOpen, ProviderError
from domain.llm import ChatMessage
from tests.unit.fakes import (
    Blocks,
    FakePeers,
    FakeProviderActor,
    ScriptedProvider,
    completion,
    error,
    streamed,
)

MESSAGES = [ChatMessage(role="user", content="hi")]


pytestmark = pytest.mark.usefixtures("openai_key")


def _caller(fakes: FakePeers) -> ModelCaller:
    data = fakes.config_actor.data
    data["providers"]["openai"]["retry_backoff_s"] = 0.001
    config = parse_config(data)
    routing = RoutingView(
        lambda: fakes.config_actor, fakes.provider, lambda: {"openai": ("openai",)}, lambda _: None
    )
    return ModelCaller(config, routing, fakes.provider, fakes.client)


async def test_a_whole_reply_is_parsed_with_the_providers_token_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provider_lease, "LAZY_FLUSH_S", provider_lease.FLUSH_S)
    provider = ScriptedProvider(completion("hello there", prompt_tokens=7, completion_tokens=3))
    fakes = FakePeers(provider)
    outcome = await _caller(fakes).complete(["gpt-4.1-mini"], MESSAGES, {"temperature": 0.2})
    assert outcome.response is not None and outcome.response.content == "hello there"
    assert (outcome.response.usage.prompt_tokens, outcome.response.usage.total_tokens) == (7, 10)
    assert (outcome.model, outcome.provider) == ("gpt-4.1-mini", "openai")
    sent = provider.requests[0]
    assert sent["url"].endswith("/chat/completions")
    assert sent["headers"]["authorization"] == "Bearer sk-test-key"
    assert sent["json"]["model"] == "gpt-4.1-mini" and sent["json"]["temperature"] == 0.2
    assert [a.error for a in outcome.attempts] == [None]
    await asyncio.sleep(provider_lease.FLUSH_S * 5)  # the outcome is settled in a batch
    assert [(ok, model) for ok, _, _, _, model in fakes.providers["openai"].settled] == [
        (True, "gpt-4.1-mini")
    ]


async def test_a_server_error_is_retried_on_the_same_model() -> None:
    provider = ScriptedProvider(error(500), completion("second time"))
    outcome = await _caller(FakePeers(provider)).complete(["gpt-4.1-mini"], MESSAGES, {})
    assert outcome.response is not None and outcome.response.content == "second time"
    assert [(a.model, a.error) for a in outcome.attempts] == [
        ("gpt-4.1-mini", "provider_error"),
        ("gpt-4.1-mini", None),
    ]


async def test_a_model_that_keeps_failing_falls_back_to_the_next_in_the_chain() -> None:
    def by_model(body: dict) -> tuple[int, dict]:
        return error(500) if body["model"] == "gpt-4.1-mini" else completion("from 4o")

    outcome = await _caller(FakePeers(ScriptedProvider(by_model))).complete(
        ["gpt-4.1-mini", "gpt-4o"], MESSAGES, {}
    )
    assert outcome.model == "gpt-4o" and outcome.response.content == "from 4o"
    assert [a.model for a in outcome.attempts] == ["gpt-4.1-mini"] * 3 + ["gpt-4o"]


async def test_when_every_model_fails_the_last_error_carries_every_attempt() -> None:
    caller = _caller(FakePeers(ScriptedProvider(error(503))))
    with pytest.raises(ProviderError) as raised:
        await caller.complete(["gpt-4.1-mini", "gpt-4o"], MESSAGES, {})
    assert len(raised.value.details["attempts"]) == 6


async def test_a_lease_refused_by_an_open_breaker_marks_routing_open_and_calls_nothing() -> None:
    provider = ScriptedProvider()
    fakes = FakePeers(provider)
    fakes.providers["openai"] = FakeProviderActor(
        refuse=CircuitOpen("provider openai circuit is open").to_dict()
    )
    caller = _caller(fakes)
    with pytest.raises(CircuitOpen):
        await caller.complete(["gpt-4.1-mini"], MESSAGES, {})
    assert caller.routing.open == {"openai"} and provider.requests == []


async def test_a_failed_endpoint_fails_over_to_the_next_before_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provider_lease, "LAZY_FLUSH_S", provider_lease.FLUSH_S)
    provider = ScriptedProvider(error(500), error(503), completion("third time"))
    fakes = FakePeers(provider)
    data = fakes.config_actor.data
    data["providers"]["openai"]["max_retries"] = 1
    data["providers"]["openai"]["endpoints"] = [
        {"name": "a", "weight": 2, "base_url": "https://a.example/v1"},
        {"name": "b", "base_url": "https://b.example/v1"},
    ]
    caller = _caller(fakes)
    caller.use_endpoints(caller.config.endpoints("openai"))

    outcome = await caller.complete(["gpt-4.1-mini"], MESSAGES, {})

    assert outcome.response is not None and outcome.response.content == "third time"
    tried = [(a.endpoint, a.error) for a in outcome.attempts]
    assert tried == [("a", "provider_error"), ("b", "provider_error"), ("a", None)]
    hosts = [httpx.URL(r["url"]).host for r in provider.requests]
    assert hosts == ["a.example", "b.example", "a.example"]
    assert outcome.provider == "openai"
    await asyncio.sleep(provider_lease.FLUSH_S * 5)
    assert len(fakes.providers["openai:a"].settled) == 2
    assert len(fakes.providers["openai:b"].settled) == 1


def _cut(data: bytes, sizes: list[int]) -> list[bytes]:
    """`data` as network reads of these sizes (the rest in one last read)."""
    blocks, at = [], 0
    for size in sizes:
        blocks.append(data[at : at + size])
        at += size
    return [*blocks, data[at:]]


async def _streamed_text(blocks: Blocks) -> tuple[str, CallOutcome]:
    outcome = CallOutcome()
    caller = _caller(FakePeers(ScriptedProvider((200, blocks))))
    chunks = [c async for c in caller.stream(["gpt-4.1-mini"], MESSAGES, {}, outcome)]
    assert chunks[-1].last
    return "".join(c.delta for c in chunks), outcome


async def test_a_stream_is_read_whole_however_the_network_cuts_it() -> None:
    pieces = ["héllo", " wörld", " ✓"]
    data = streamed(pieces)[1].replace(b"\n", b"\r\n")
    for char in "éö✓":  # sent as UTF-8, as providers do, not as JSON escapes
        data = data.replace(json.dumps(char)[1:-1].encode(), char.encode())
    cut = data.index("ö".encode()) + 1  # inside a two-byte character
    crlf = data.index(b"\r\n") + 1  # between a CR and its LF
    blocks = _cut(data, [crlf, 3, cut - crlf - 3, 1, 7])
    text, outcome = await _streamed_text(Blocks(blocks))
    assert text == "".join(pieces)
    assert outcome.attempts[-1].error is None
    one_byte_reads = [data[i : i + 1] for i in range(len(data))]
    assert (await _streamed_text(Blocks(one_byte_reads)))[0] == "".join(pieces)


async def test_a_gzipped_stream_is_decoded_before_its_lines_are_read() -> None:
    packed = gzip.compress(streamed(["zipped", " stream"])[1])
    blocks = Blocks(_cut(packed, [10, 10]), {"content-encoding": "gzip"})
    assert (await _streamed_text(blocks))[0] == "zipped stream"


async def test_a_stream_cut_before_its_end_fails_the_attempt() -> None:
    data = streamed(["never", " finished"])[1]
    cut_off = data[: data.index(b"data: [DONE]")] + b"data: {\"id\""  # no [DONE], a torn line
    outcome = CallOutcome()
    caller = _caller(FakePeers(ScriptedProvider((200, Blocks([cut_off])))))
    with pytest.raises(ProviderError):
        async for _ in caller.stream(["gpt-4.1-mini"], MESSAGES, {}, outcome):
            pass
    assert outcome.attempts[0].error == "provider_error"


class _Reply:
    """A provider reply whose body is in whole (`complete`), or never comes."""

    def __init__(self, complete: bool) -> None:
        self.complete = complete

    async def aread(self) -> bytes:
        if not self.complete:
            await asyncio.sleep(60)
        return b""

    def json(self) -> dict[str, bool]:
        return {"read": True}


async def test_a_body_already_in_whole_is_read_without_a_timer_and_a_late_one_times_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    timers: list[float] = []
    timeout_at = asyncio.timeout_at
    monkeypatch.setattr(
        model_calls.asyncio, "timeout_at", lambda when: timers.append(when) or timeout_at(when)
    )
    loop = asyncio.get_running_loop()
    assert await model_calls._whole_body(_Reply(complete=True), loop.time() + 5) == {"read": True}
    assert timers == []
    with pytest.raises(TimeoutError):
        await model_calls._whole_body(_Reply(complete=False), loop.time() + 0.05)
    assert len(timers) == 1
