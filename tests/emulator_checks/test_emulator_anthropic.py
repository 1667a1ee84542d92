"""The emulator speaks Anthropic's Messages format: the official SDK parses all of it."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.emulator import ProviderEmulator


@pytest.fixture
def emu(emulator: ProviderEmulator) -> ProviderEmulator:
    """The session's emulator (its rules here match only these tests' prompts)."""
    return emulator


@pytest.fixture
def client(emu: ProviderEmulator) -> Iterator[anthropic.Anthropic]:
    root = emu.base_url.removesuffix("/v1")
    sdk = anthropic.Anthropic(base_url=root, api_key="test", max_retries=0, timeout=5)
    yield sdk
    sdk.close()


def ask(text: str) -> list[anthropic.types.MessageParam]:
    return [{"role": "user", "content": text}]


def test_a_whole_message_parses(emu: ProviderEmulator, client: anthropic.Anthropic) -> None:
    emu.script("whole-a", content="Bonjour le monde", prompt_tokens=12, completion_tokens=3)
    reply = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, system="Be terse.", messages=ask("whole-a")
    )
    assert isinstance(reply, anthropic.types.Message)
    assert reply.id.startswith("msg_") and reply.role == "assistant"
    assert [b.type for b in reply.content] == ["text"]
    assert reply.content[0].text == "Bonjour le monde"
    assert reply.stop_reason == "end_turn"
    assert (reply.usage.input_tokens, reply.usage.output_tokens) == (12, 3)
    sent = emu.requests_matching("whole-a")[0]
    assert sent.path == "/v1/messages" and sent.headers["authorization"] == "Bearer test"
    assert sent.headers["anthropic-version"]


def test_a_stream_parses_into_the_same_message(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.script("stream-a", chunks=["Hel", "lo ", "there"], prompt_tokens=9, completion_tokens=4)
    with client.messages.stream(
        model="claude-haiku-4-5", max_tokens=64, messages=ask("stream-a")
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello there"
    assert final.content[0].text == "Hello there"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, 4)


def test_tool_use_parses_whole_and_streamed(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    call = {"name": "get_weather", "arguments": {"city": "Paris", "days": [1, 2]}}
    emu.script("tools-a", tool_calls=[call])
    tools = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {}}}]
    reply = client.messages.create(
        model="claude-sonnet-4-6", max_tokens=64, tools=tools, messages=ask("tools-a")
    )
    assert reply.stop_reason == "tool_use"
    block = reply.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert block.input == {"city": "Paris", "days": [1, 2]}
    with client.messages.stream(
        model="claude-sonnet-4-6", max_tokens=64, tools=tools, messages=ask("tools-a")
    ) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == {"city": "Paris", "days": [1, 2]}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, anthropic.RateLimitError),
        (529, anthropic.InternalServerError),
        (401, anthropic.AuthenticationError),
        (400, anthropic.BadRequestError),
    ],
)
def test_errors_parse(
    emu: ProviderEmulator, client: anthropic.Anthropic, status: int, error: type
) -> None:
    tag = f"err-a-{status}"
    emu.script(tag, status=status, headers={"retry-after": "2"} if status == 429 else None)
    with pytest.raises(error) as raised:
        client.messages.create(model="claude-sonnet-4-6", max_tokens=8, messages=ask(tag))
    assert raised.value.status_code == status
    assert raised.value.body["error"]["type"]  # type: ignore[index]
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "2"


def test_an_error_event_after_the_200_is_raised_by_the_sdk(
    emu: ProviderEmulator, client: anthropic.Anthropic
) -> None:
    emu.script("midway-a", chunks=["one ", "two ", "three"], fail_after_chunks=1)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=64, messages=ask("midway-a")
        ) as stream:
            seen.extend(stream.text_stream)
    assert seen == ["one "]


def test_invalid_requests_are_refused_like_the_api(emu: ProviderEmulator) -> None:
    import httpx

    url = emu.base_url + "/messages"
    no_key = httpx.post(url, json={})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    missing = httpx.post(url, json={"model": "m", "messages": ask("x")}, headers=headers)
    assert missing.status_code == 400 and "max_tokens" in missing.json()["error"]["message"]
    body = {"model": "m", "max_tokens": 5, "messages": ask("x"), "frequency_penalty": 1}
    extra = httpx.post(url, json=body, headers=headers)
    assert extra.status_code == 400 and extra.json()["error"]["type"] == "invalid_request_error"
