"""The OpenAI chat codec (`domain/codecs/openai_chat.py`): wire body, parsed reply, error
mapping."""

from __future__ import annotations

import pytest

from actors.settings import DEFAULT_CONFIG, load_config
from domain import errors
from domain.codecs import openai_chat
from domain.llm import ChatMessage, LLMRequest

CATALOG = load_config(DEFAULT_CONFIG)


def test_openai_codec_builds_the_wire_body() -> None:
    request = LLMRequest(
        model="gpt-4o-mini",
        messages=[ChatMessage(role="system", content="s"), ChatMessage(role="user", content="u")],
        parameters={"temperature": 0.5, "unknown": 1},
    )
    call, params = openai_chat.build_call(
        request, CATALOG.models["gpt-4o-mini"], "gpt-4o-mini", "k"
    )
    assert call.path == "/chat/completions"
    assert call.headers["authorization"] == "Bearer k"
    assert call.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "temperature": 0.5,
    }
    assert params.dropped == ["unknown"]


def test_openai_codec_parses_a_completion() -> None:
    body = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }
    parsed = openai_chat.parse_response(body)
    assert (parsed.content, parsed.finish_reason, parsed.usage.total_tokens) == ("hi", "stop", 9)
    with pytest.raises(errors.ProviderError):
        openai_chat.parse_response({"choices": []})


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (500, "provider_error", True),
        (503, "provider_error", True),
        (429, "provider_rate_limited", True),
        (401, "provider_authentication_failed", False),
        (400, "provider_rejected_request", False),
    ],
)
def test_openai_error_statuses_map_to_stable_types(status: int, kind: str, retryable: bool) -> None:
    err = openai_chat.map_error(status, {"error": {"message": "boom"}}, 2.0)
    assert (err.type, err.retryable) == (kind, retryable)


def test_a_prompt_too_long_is_its_own_non_retryable_type() -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 128000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    err = openai_chat.map_error(400, body, None)
    assert (err.type, err.status, err.retryable) == ("context_length_exceeded", 400, False)
