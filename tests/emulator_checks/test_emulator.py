"""The provider emulator speaks OpenAI's wire format: the official SDK parses all of it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from tests.emulator import ProviderEmulator, RecordedRequest

WEATHER_ARGS = {"city": "Paris", "unit": "celsius", "days": [1, 2, 3]}


@pytest.fixture(scope="module")
def emu() -> Iterator[ProviderEmulator]:
    emulator = ProviderEmulator().start()
    yield emulator
    emulator.stop()


@pytest.fixture
def client(emu: ProviderEmulator) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=emu.base_url, api_key="test", max_retries=0, timeout=5)
    yield sdk
    sdk.close()


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def wait_for(predicate: Any, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def raw_post(url: str, data: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_base_url_and_port(emu: ProviderEmulator) -> None:
    assert emu.port > 0
    assert emu.base_url == f"http://127.0.0.1:{emu.port}/v1"


def test_default_echo_reply_parses(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there echo world"},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert isinstance(reply, ChatCompletion)
    assert reply.id.startswith("chatcmpl-")
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    assert reply.created > 0
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there echo world"
    assert choice.finish_reason == "stop"
    # 3 + 4 words, plus 3 per message; completion: "Echo:" + 4 words.
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 7 + 2 * 3
    assert reply.usage.completion_tokens == 5
    assert reply.usage.total_tokens == 18


def test_echo_is_truncated_to_200_chars(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="m", messages=user("x" * 500))
    assert reply.choices[0].message.content == ("Echo: " + "x" * 500)[:200]


def test_scripted_reply_and_usage(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    emu.script("scripted-usage", content="Fixed answer.", prompt_tokens=11, completion_tokens=7)
    reply = client.chat.completions.create(model="gpt-4o", messages=user("scripted-usage"))
    assert reply.choices[0].message.content == "Fixed answer."
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (11, 7)
    assert reply.usage.total_tokens == 18


def test_rule_matches_text_parts_newest_wins_and_times(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("rules-topic", content="old rule")
    emu.script("rules-topic", content="new rule", times=1)
    parts = [{"role": "user", "content": [{"type": "text", "text": "about rules-topic now"}]}]

    first = client.chat.completions.create(model="m", messages=parts)
    second = client.chat.completions.create(model="m", messages=parts)

    assert first.choices[0].message.content == "new rule"
    assert second.choices[0].message.content == "old rule"


@pytest.mark.asyncio
async def test_stream_with_usage_parses(emu: ProviderEmulator) -> None:
    text = "stream me some tokens please"
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="gpt-4o-mini",
            messages=user(text),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]

    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-mini" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == "Echo: " + text
    assert len(chunks) == 1 + -(-len(content) // 4) + 2  # role, ~4-char pieces, finish, usage
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 5 + 3
    assert chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_usage_and_scripted_chunks(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("chunked-reply", chunks=["Hel", "lo, ", "wor", "ld!"], chunk_delay=0.01)
    stream = client.chat.completions.create(model="m", messages=user("chunked-reply"), stream=True)
    chunks = list(stream)

    pieces = [c.choices[0].delta.content for c in chunks[1:-1]]
    assert pieces == ["Hel", "lo, ", "wor", "ld!"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert emu.requests_matching("chunked-reply")[-1].completed


def test_delayed_chunks_carry_the_time_they_were_sent(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("stamped-reply", chunks=["a@{sent_at} ", "b@{sent_at} "], chunk_delay=0.05)
    before = time.time()
    stream = client.chat.completions.create(model="m", messages=user("stamped-reply"), stream=True)
    arrived = [(c.choices[0].delta.content, time.time()) for c in stream if c.choices]
    pieces = [(text, at) for text, at in arrived if text]

    assert [text.split("@")[0] for text, _ in pieces] == ["a", "b"]
    sent = [float(text.split("@")[1]) for text, _ in pieces]
    assert before + 0.05 <= sent[0] <= pieces[0][1]  # after one delay, before it arrived
    assert sent[0] + 0.05 <= sent[1] <= pieces[1][1]


def test_tool_calls_non_streaming(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    calls = [
        {
            "id": "call_weather1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(WEATHER_ARGS)},
        },
        {"name": "get_time", "arguments": {"tz": "Europe/Paris"}},
    ]
    emu.script("tool-sync", tool_calls=calls)
    reply = client.chat.completions.create(model="m", messages=user("tool-sync"))

    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    tool_calls = choice.message.tool_calls
    assert tool_calls is not None and len(tool_calls) == 2
    assert tool_calls[0].id == "call_weather1"
    assert tool_calls[0].type == "function"
    assert tool_calls[0].function.name == "get_weather"
    assert json.loads(tool_calls[0].function.arguments) == WEATHER_ARGS
    assert tool_calls[1].id.startswith("call_")
    assert json.loads(tool_calls[1].function.arguments) == {"tz": "Europe/Paris"}


@pytest.mark.asyncio
async def test_tool_calls_streaming(emu: ProviderEmulator) -> None:
    arguments = json.dumps(WEATHER_ARGS)
    emu.script(
        "tool-stream",
        tool_calls=[
            {
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            },
            {
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz": "UTC"}'},
            },
        ],
    )
    async with openai.AsyncOpenAI(base_url=emu.base_url, api_key="test", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="m", messages=user("tool-stream"), stream=True
        )
        chunks = [chunk async for chunk in stream]

    assembled: dict[int, dict[str, Any]] = {}
    fragments = 0
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or ():
            slot = assembled.setdefault(call.index, {"id": None, "name": None, "arguments": ""})
            if call.id:
                slot["id"] = call.id
            if call.function and call.function.name:
                slot["name"] = call.function.name
            if call.function and call.function.arguments:
                slot["arguments"] += call.function.arguments
                fragments += 1

    assert chunks[0].choices[0].delta.role == "assistant"
    assert assembled[0] == {"id": "call_a", "name": "get_weather", "arguments": arguments}
    assert assembled[1] == {"id": "call_b", "name": "get_time", "arguments": '{"tz": "UTC"}'}
    assert fragments > 2  # arguments really arrive in pieces
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (400, openai.BadRequestError, None),
        (401, openai.AuthenticationError, "invalid_api_key"),
        (429, openai.RateLimitError, "rate_limit_exceeded"),
        (500, openai.InternalServerError, None),
        (503, openai.InternalServerError, None),
    ],
)
def test_error_status_raises_matching_sdk_error(
    emu: ProviderEmulator,
    client: openai.OpenAI,
    status: int,
    error_class: type[openai.APIStatusError],
    code: str | None,
) -> None:
    emu.script(f"fail-with-{status}", status=status, headers={"Retry-After": "2"})
    with pytest.raises(error_class) as caught:
        client.chat.completions.create(model="m", messages=user(f"fail-with-{status}"))
    assert caught.value.status_code == status
    assert caught.value.code == code
    assert caught.value.type
    assert caught.value.response.headers["retry-after"] == "2"


def test_custom_error_body(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    body = {
        "error": {
            "message": "quota gone",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    emu.script("custom-error", status=429, error_body=body)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="m", messages=user("custom-error"))
    assert caught.value.code == "insufficient_quota"
    assert "quota gone" in str(caught.value)


def test_stream_request_with_error_status(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    emu.script("stream-error", status=500)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=user("stream-error"), stream=True)


def test_missing_auth_and_malformed_body(emu: ProviderEmulator) -> None:
    url = emu.base_url + "/chat/completions"
    good = json.dumps({"model": "m", "messages": user("hi")}).encode()

    status, body = raw_post(url, good, {"Content-Type": "application/json"})
    assert status == 401
    assert body["error"]["type"] == "authentication_error"
    assert set(body["error"]) == {"message", "type", "param", "code"}

    auth = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    status, body = raw_post(url, b"{not json", auth)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"

    status, body = raw_post(url, json.dumps({"model": "m"}).encode(), auth)
    assert status == 400
    assert body["error"]["param"] == "messages"


def test_models_list(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "gpt-4o-mini" in ids


def test_requests_are_recorded(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    before = time.time()
    client.chat.completions.create(
        model="gpt-4o", messages=user("record-this body"), temperature=0.25, max_tokens=12
    )
    recorded = emu.requests_matching("record-this")

    assert len(recorded) == 1
    rec = recorded[0]
    assert isinstance(rec, RecordedRequest)
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.body == {
        "model": "gpt-4o",
        "messages": user("record-this body"),
        "temperature": 0.25,
        "max_tokens": 12,
    }
    assert rec.headers["authorization"] == "Bearer test"
    assert rec.received_at >= before - 1
    assert rec.completed and not rec.client_disconnected
    assert rec in emu.requests


def test_delay(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    emu.script("slow-answer", delay=0.2)
    started = time.monotonic()
    client.chat.completions.create(model="m", messages=user("slow-answer"))
    assert time.monotonic() - started >= 0.2


def test_fail_after_chunks_breaks_the_stream(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    emu.script("break-midway", content="abcdefghijklmnopqrstuvwxyz", fail_after_chunks=2)
    received: list[str] = []
    stream = client.chat.completions.create(model="m", messages=user("break-midway"), stream=True)
    with pytest.raises(openai.APIConnectionError):
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "abcdefgh"
    rec = emu.requests_matching("break-midway")[-1]
    assert not rec.completed and not rec.client_disconnected


def test_fail_after_chunks_without_stream_drops_connection(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("drop-sync", fail_after_chunks=0)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=user("drop-sync"))


def test_client_closing_slow_stream_is_recorded(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("hang-up-early", content="x" * 200, chunk_delay=0.1)
    stream = client.chat.completions.create(model="m", messages=user("hang-up-early"), stream=True)
    for seen, _chunk in enumerate(stream):
        if seen == 2:
            break
    stream.close()

    rec = emu.requests_matching("hang-up-early")[-1]
    assert wait_for(lambda: rec.client_disconnected)
    assert not rec.completed


def test_reset_and_standalone_instance() -> None:
    with ProviderEmulator(record=False) as other:
        sdk = openai.OpenAI(base_url=other.base_url, api_key="k", max_retries=0)

        def ask() -> str | None:
            reply = sdk.chat.completions.create(model="m", messages=user("anything"))
            return reply.choices[0].message.content

        other.script("anything", content="scripted")
        assert ask() == "scripted"
        assert other.requests == []  # record=False keeps nothing
        other.reset()
        assert ask() == "Echo: anything"
        sdk.close()


def test_azure_deployments_answer_the_official_azure_client(emu: ProviderEmulator) -> None:
    root = emu.base_url.removesuffix("/v1")
    azure = openai.AzureOpenAI(
        azure_endpoint=root, api_key="azure-key", api_version="2024-10-21", max_retries=0
    )
    reply = azure.chat.completions.create(model="my-gpt4o", messages=user("azure hello"))
    assert reply.choices[0].message.content == "Echo: azure hello"
    assert reply.model == "my-gpt4o"
    sent = emu.requests_matching("azure hello")[-1]
    assert sent.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert sent.headers["api-key"] == "azure-key"
    azure.close()
    url = f"{root}/openai/deployments/my-gpt4o/chat/completions"
    body = json.dumps({"messages": user("x")}).encode()
    no_key, _ = raw_post(url + "?api-version=2024-10-21", body, {"content-type": "x"})
    no_version, _ = raw_post(url, body, {"api-key": "k"})
    assert (no_key, no_version) == (401, 404)


def test_ollama_chat_answers_the_official_ollama_client(emu: ProviderEmulator) -> None:
    root = emu.base_url.removesuffix("/v1")
    client = ollama.Client(host=root)
    emu.script("llama-whole", content="Llamas hum", prompt_tokens=11, completion_tokens=2)
    reply = client.chat(model="llama3.2", messages=user("llama-whole"), stream=False)
    assert reply.message.content == "Llamas hum" and reply.done is True
    assert (reply.prompt_eval_count, reply.eval_count) == (11, 2)
    emu.script("llama-stream", chunks=["Lla", "mas ", "stream"])
    parts = list(client.chat(model="llama3.2", messages=user("llama-stream"), stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Llamas stream"
    assert [p.done for p in parts][-1] is True and parts[-1].eval_count
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    emu.script("llama-tools", tool_calls=[call])
    tooled = client.chat(model="llama3.2", messages=user("llama-tools"), stream=False)
    assert tooled.message.tool_calls[0].function.name == "get_weather"
    assert tooled.message.tool_calls[0].function.arguments == {"city": "Paris"}
    emu.script("llama-missing", status=404, error_body={"error": 'model "nope" not found'})
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="nope", messages=user("llama-missing"), stream=False)
    assert missing.value.status_code == 404 and "not found" in missing.value.error


def test_gemini_answers_the_official_google_genai_client(emu: ProviderEmulator) -> None:
    from google import genai
    from google.genai import errors as genai_errors
    from google.genai import types

    root = emu.base_url.removesuffix("/v1")
    client = genai.Client(api_key="gk", http_options=types.HttpOptions(base_url=root))
    emu.script("gem-whole", content="Gemini hums", prompt_tokens=7, completion_tokens=2)
    config = types.GenerateContentConfig(system_instruction="Be terse.", temperature=0.2)
    reply = client.models.generate_content(
        model="gemini-2.5-flash", contents="gem-whole", config=config
    )
    assert reply.text == "Gemini hums"
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert (
        reply.usage_metadata.prompt_token_count,
        reply.usage_metadata.candidates_token_count,
    ) == (7, 2)
    sent = emu.requests_matching("gem-whole")[-1]
    assert sent.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == "gk"
    emu.script("gem-stream", chunks=["Gem", "ini ", "streams"])
    parts = list(
        client.models.generate_content_stream(model="gemini-2.5-flash", contents="gem-stream")
    )
    assert "".join(p.text or "" for p in parts) == "Gemini streams"
    assert parts[-1].usage_metadata.total_token_count
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}
    emu.script("gem-tools", tool_calls=[call])
    tooled = client.models.generate_content(model="gemini-2.5-flash", contents="gem-tools")
    assert tooled.function_calls[0].name == "get_weather"
    assert tooled.function_calls[0].args == {"city": "Paris"}
    emu.script("gem-limit", status=429)
    with pytest.raises(genai_errors.ClientError) as limited:
        client.models.generate_content(model="gemini-2.5-flash", contents="gem-limit")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


def test_embeddings_parse_in_the_official_sdk(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    # the SDK asks for base64 unless told otherwise, and decodes it into floats
    one = client.embeddings.create(model="text-embedding-3-small", input="Hello embedding world")
    assert one.object == "list" and one.model == "text-embedding-3-small"
    assert len(one.data) == 1 and one.data[0].object == "embedding" and one.data[0].index == 0
    vector = one.data[0].embedding
    assert len(vector) == 256 and all(isinstance(v, float) for v in vector)
    assert sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-5)
    assert (one.usage.prompt_tokens, one.usage.total_tokens) == (3, 3)
    sent = emu.requests[-1]
    assert sent.path == "/v1/embeddings" and sent.status == 200 and sent.completed
    assert sent.body["encoding_format"] == "base64"

    as_floats = client.embeddings.create(
        model="text-embedding-3-small", input="Hello embedding world", encoding_format="float"
    )
    assert as_floats.data[0].embedding == vector  # float32 values, whichever the encoding

    many = client.embeddings.create(
        model="text-embedding-3-large", input=["first text", "the second text", "x"], dimensions=64
    )
    assert [d.index for d in many.data] == [0, 1, 2]
    assert all(len(d.embedding) == 64 for d in many.data)
    assert many.usage.prompt_tokens == 2 + 3 + 1
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[15339, 1917]])
    assert len(tokens.data[0].embedding) == 256 and tokens.usage.prompt_tokens == 2


def test_embeddings_are_deterministic_and_close_for_close_texts(client: openai.OpenAI) -> None:
    texts = [
        "What is the capital of France?",
        "what's the capital of France",
        "Bananas ripen faster next to apples in a paper bag.",
        "What is the capital of France?",
    ]
    reply = client.embeddings.create(model="text-embedding-3-small", input=texts)
    a, b, unrelated, again = (d.embedding for d in reply.data)
    assert a == again
    assert _cosine(a, b) > 0.8
    assert _cosine(a, unrelated) < 0.3 and _cosine(b, unrelated) < 0.3


def test_embeddings_errors(emu: ProviderEmulator, client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.embeddings.create(model="no-such-embedder", input="hi")
    assert missing.value.status_code == 404 and missing.value.code == "model_not_found"
    assert emu.requests[-1].status == 404
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="")
    with pytest.raises(openai.BadRequestError) as too_wide:
        client.embeddings.create(model="text-embedding-3-small", input="hi", dimensions=0)
    assert too_wide.value.param == "dimensions"

    url = emu.base_url + "/embeddings"
    good = json.dumps({"model": "text-embedding-3-small", "input": "hi"}).encode()
    status, body = raw_post(url, good, {"Content-Type": "application/json"})
    assert status == 401 and body["error"]["type"] == "authentication_error"
    auth = {"Authorization": "Bearer x", "Content-Type": "application/json"}
    status, body = raw_post(url, json.dumps({"model": "text-embedding-3-small"}).encode(), auth)
    assert status == 400 and body["error"]["param"] == "input"
    assert set(body["error"]) == {"message", "type", "param", "code"}


def test_a_rule_with_a_probability_answers_that_share_and_unscript_forgets_it(
    emu: ProviderEmulator, client: openai.OpenAI
) -> None:
    emu.script("flaky-share", status=503, probability=0.3)
    failed = 0
    for _ in range(200):
        try:
            client.with_options(max_retries=0).chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "flaky-share"}]
            )
        except openai.InternalServerError:
            failed += 1
    assert 30 <= failed <= 95, failed  # 60 expected; the bounds are ~4.5 sigma wide
    emu.unscript("flaky-share")
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "flaky-share"}]
    )
    assert answer.choices[0].message.content == "Echo: flaky-share"
    with pytest.raises(ValueError, match="probability"):
        emu.script("x", probability=0.0)
