"""Golden tests of the provider codecs: exact wire bodies out, unified results in."""

from __future__ import annotations

import pytest

from actors.settings import DEFAULT_CONFIG, load_config
from domain import errors
from domain.codecs import anthropic_messages as anthropic
from domain.codecs import azure_openai, gemini, ollama_chat, openai_chat
from domain.llm import ChatMessage, LLMRequest
from tests.emulator import anthropic as emulator_anthropic
from tests.emulator import gemini as emulator_gemini
from tests.emulator import ollama as emulator_ollama
from tests.emulator.rules import Plan

CATALOG = load_config(DEFAULT_CONFIG)
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "toolu_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def unified_request(stream: bool = False) -> LLMRequest:
    return LLMRequest(
        model="claude-sonnet-4-6",
        messages=[
            ChatMessage(role="system", content="You are terse."),
            ChatMessage(role="user", content="Weather in Paris?"),
            ChatMessage(role="assistant", content="Let me look.", tool_calls=[CALL]),
            ChatMessage(role="tool", tool_call_id="toolu_1", content='{"temp": 21}'),
            ChatMessage(role="user", content="And tomorrow?"),
        ],
        parameters={
            "temperature": 1.5,
            "top_p": 0.9,
            "max_tokens": 500,
            "stop": "END",
            "frequency_penalty": 0.5,
            "seed": 7,
        },
        tools=[TOOL],
        stream=stream,
    )


def test_anthropic_request_body_is_exact() -> None:
    call, params = anthropic.build_call(
        unified_request(stream=True),
        CATALOG.models["claude-sonnet-4-6"],
        "claude-sonnet-4-6",
        "sk-ant-test",
    )
    assert call.path == "/v1/messages"
    assert call.headers == {
        "content-type": "application/json",
        "anthropic-version": anthropic.API_VERSION,
        "authorization": "Bearer sk-ant-test",
    }
    assert call.body == {
        "model": "claude-sonnet-4-6",
        "max_tokens": 500,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp": 21}'},
                    {"type": "text", "text": "And tomorrow?"},
                ],
            },
        ],
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "stream": True,
    }
    assert sorted(params.dropped) == ["frequency_penalty", "seed"]
    assert params.adjusted == {"temperature": 1.0}
    # the emulator, which the official SDK checks, accepts the body as the API would
    assert emulator_anthropic.validate(call.body) is None


def test_anthropic_max_tokens_is_always_sent() -> None:
    request = LLMRequest(model="claude-haiku-4-5", messages=[ChatMessage(role="user", content="x")])
    call, _ = anthropic.build_call(request, CATALOG.models["claude-haiku-4-5"], "m", None)
    assert call.body["max_tokens"] == CATALOG.models["claude-haiku-4-5"].max_output_tokens
    assert "authorization" not in call.headers


def test_anthropic_reply_parses_into_the_unified_result() -> None:
    body = emulator_anthropic.whole(
        "claude-sonnet-4-6",
        Plan(
            content="It is sunny.", tool_calls=[CALL], finish="tool_calls", prompt=31, completion=9
        ),
    )
    reply = anthropic.parse_response(body)
    assert reply.content == "It is sunny."
    assert reply.finish_reason == "tool_calls"
    assert reply.tool_calls[0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
    }
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (31, 9)
    assert reply.usage.total_tokens == 40 and reply.provider_model == "claude-sonnet-4-6"


def test_anthropic_stream_parses_text_tools_finish_and_usage() -> None:
    head, deltas, tail = emulator_anthropic.stream(
        "claude-sonnet-4-6",
        Plan(pieces=["Hel", "lo"], tool_calls=[CALL], finish="tool_calls", prompt=12, completion=7),
    )
    lines = b"".join([head, *deltas, tail]).decode().splitlines()
    parsed = [anthropic.parse_stream_line(line) for line in lines]
    assert [p for p in parsed if p is not None][-1] == anthropic.STREAM_DONE
    chunks = [p for p in parsed if p is not None and p != anthropic.STREAM_DONE]
    assert "".join(c.delta for c in chunks) == "Hello"
    usage = None
    for chunk in chunks:
        if chunk.usage is not None:
            usage = chunk.usage if usage is None else usage.merged(chunk.usage)
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (12, 7)
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    fragments = [d for c in chunks for d in c.tool_call_deltas]
    assert fragments[0]["id"].startswith("toolu_")
    assert fragments[0]["function"]["name"] == "get_weather"
    arguments = "".join(d["function"].get("arguments", "") for d in fragments)
    assert arguments.replace(" ", "") == '{"city":"Paris"}'


def test_anthropic_error_event_after_the_200_is_typed() -> None:
    event = emulator_anthropic.error_event(529).decode().splitlines()[1]
    with pytest.raises(errors.ProviderOverloaded) as raised:
        anthropic.parse_stream_line(event)
    assert raised.value.retryable
    overloaded = anthropic.map_error(529, emulator_anthropic.error_body(529), None)
    assert overloaded.type == "provider_overloaded" and overloaded.retryable
    too_long = emulator_anthropic.error_body(400, "prompt is too long: 210000 tokens > 200000")
    exceeded = anthropic.map_error(400, too_long, None)
    assert exceeded.type == "context_length_exceeded" and not exceeded.retryable
    limited = anthropic.map_error(429, emulator_anthropic.error_body(429), 3.0)
    assert limited.type == "provider_rate_limited" and limited.retry_after == 3.0
    assert not anthropic.map_error(401, emulator_anthropic.error_body(401), None).retryable


def test_azure_request_goes_to_the_deployment_with_its_api_version() -> None:
    request = LLMRequest(
        model="azure-gpt-4o-mini",
        messages=[ChatMessage(role="user", content="hi")],
        parameters={"temperature": 0.2, "max_tokens": 50},
        stream=True,
    )
    spec = CATALOG.providers["azure"]
    call, _ = azure_openai.build_call(
        request, CATALOG.models["azure-gpt-4o-mini"], "prod gpt", "az-key", spec
    )
    assert call.path == "/openai/deployments/prod%20gpt/chat/completions?api-version=2024-10-21"
    assert call.headers == {"content-type": "application/json", "api-key": "az-key"}
    assert call.body == {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 50,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_ollama_request_puts_parameters_in_options() -> None:
    request = unified_request(stream=True)
    model = CATALOG.models["ollama-llama3.2"]
    call, params = ollama_chat.build_call(request, model, "llama3.2", None)
    assert call.path == "/api/chat" and "authorization" not in call.headers
    assert call.body["model"] == "llama3.2" and call.body["stream"] is True
    assert call.body["options"] == {
        "temperature": 1.5,
        "top_p": 0.9,
        "num_predict": 500,
        "stop": ["END"],
        "frequency_penalty": 0.5,
        "seed": 7,
    }
    assert params.dropped == []
    assert call.body["messages"][2] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
    }
    assert call.body["tools"] == [TOOL]


def test_ollama_stream_ends_at_its_done_line() -> None:
    _, lines, last = emulator_ollama.stream(
        "llama3.2", Plan(pieces=["Hi ", "there"], finish="stop", prompt=8, completion=2)
    )
    chunks = [ollama_chat.parse_stream_line(line.decode()) for line in [*lines, last]]
    assert "".join(c.delta for c in chunks) == "Hi there"
    assert [c.last for c in chunks] == [False, False, True]
    assert chunks[-1].usage.total_tokens == 10 and chunks[-1].finish_reason == "stop"
    whole = ollama_chat.parse_response(
        emulator_ollama.whole(
            "llama3.2", Plan(content="ok", tool_calls=[CALL], finish="stop", prompt=5, completion=1)
        )
    )
    assert whole.finish_reason == "tool_calls"
    assert whole.tool_calls[0]["function"]["arguments"] == '{"city": "Paris"}'
    assert ollama_chat.map_error(404, {"error": "model not found"}, None).type == (
        "provider_rejected_request"
    )


def test_gemini_request_has_contents_system_instruction_and_generation_config() -> None:
    request = unified_request(stream=True)
    spec = CATALOG.providers["gemini"]
    call, params = gemini.build_call(
        request, CATALOG.models["gemini-2.5-flash"], "gemini-2.5-flash", "gk", spec
    )
    assert call.path == "/v1/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert call.headers == {"content-type": "application/json", "x-goog-api-key": "gk"}
    assert call.body == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Let me look."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"text": "And tomorrow?"},
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "generationConfig": {
            "temperature": 1.5,
            "topP": 0.9,
            "maxOutputTokens": 500,
            "stopSequences": ["END"],
            "frequencyPenalty": 0.5,
            "seed": 7,
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather for a city",
                        "parameters": TOOL["function"]["parameters"],
                    }
                ]
            }
        ],
    }
    assert params.dropped == []
    assert emulator_gemini.validate(call.body) is None


def test_gemini_stream_and_reply_parse_into_the_unified_result() -> None:
    _, deltas, last = emulator_gemini.stream(
        "gemini-2.5-flash",
        Plan(pieces=["Bon", "jour"], tool_calls=[CALL], finish="stop", prompt=12, completion=3),
    )
    chunks = [
        gemini.parse_stream_line(line)
        for frame in [*deltas, last]
        for line in frame.decode().splitlines()
        if line
    ]
    assert "".join(c.delta for c in chunks) == "Bonjour"
    assert [c.last for c in chunks] == [False, True]
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].usage.total_tokens == 15
    assert chunks[-1].tool_call_deltas[0]["function"]["name"] == "get_weather"
    whole = gemini.parse_response(
        emulator_gemini.whole(
            "gemini-2.5-flash", Plan(content="Salut", finish="length", prompt=4, completion=1)
        )
    )
    assert (whole.content, whole.finish_reason, whole.usage.total_tokens) == ("Salut", "length", 5)
    limited = gemini.map_error(429, emulator_gemini.error_body(429), 1.0)
    assert limited.type == "provider_rate_limited"


def test_cache_reads_are_reported_as_cached_prompt_tokens() -> None:
    claude = anthropic.parse_response(
        {
            "content": [{"type": "text", "text": "x"}],
            "usage": {
                "input_tokens": 10,
                "cache_read_input_tokens": 900,
                "cache_creation_input_tokens": 90,
                "output_tokens": 5,
            },
        }
    )
    assert (claude.usage.prompt_tokens, claude.usage.cached_tokens) == (1000, 900)
    body = emulator_gemini.whole(
        "gemini-2.5-flash", Plan(content="x", finish="stop", prompt=800, completion=5)
    )
    body["usageMetadata"]["cachedContentTokenCount"] = 600
    assert gemini.parse_response(body).usage.cached_tokens == 600


@pytest.mark.parametrize(
    ("codec", "prefix"),
    [(openai_chat, "data: "), (anthropic, "data: "), (gemini, "data: "), (ollama_chat, "")],
)
def test_a_stream_line_that_is_no_json_object_is_the_providers_fault(
    codec: object, prefix: str
) -> None:
    for text in ("{not json", "5", '["a"]', '"text"', "NaN"):
        with pytest.raises(errors.ProviderError, match="malformed"):
            codec.parse_stream_line(prefix + text)  # type: ignore[attr-defined]


def test_a_stream_chunk_with_a_long_digit_run_in_its_id_reads_whole() -> None:
    line = (
        'data: {"id":"chatcmpl-0000000000000000000000","choices":[{"index":0,'
        '"delta":{"content":"Hé ✓"},"finish_reason":null}],"usage":null}'
    )
    chunk = openai_chat.parse_stream_line(line)
    assert chunk is not None and chunk.delta == "Hé ✓" and chunk.usage is None
    big = 'data: {"choices":[],"usage":{"prompt_tokens":12345678901234567890}}'
    chunk = openai_chat.parse_stream_line(big)
    assert chunk is not None and chunk.usage is not None
    assert chunk.usage.prompt_tokens == 12345678901234567890  # exact, not a float
