"""OpenAI's chat completions in and out: validation, the job, the completion, the chunks (read
back by the official SDK's own parser, in-process)."""

from __future__ import annotations

import httpx
import openai
import pytest
from pydantic import ValidationError

from domain.chat_completions import (
    ChatCompletionRequest,
    ChunkFramer,
    completion,
    openai_error,
)
from domain.errors import InvalidRequest, ModelNotFound, RateLimited
from domain.run_plan import chat_plan

EXECUTION = "0b5d6a9e-5f57-4d53-9d0f-1e9f7b0c2a11"


def _request(**body: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate(
        {"model": "cb:smart-chat", "messages": [{"role": "user", "content": "hi"}], **body}
    )


def test_the_job_has_unified_messages_and_parameters() -> None:
    job = _request(
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
        ],
        max_completion_tokens=30,
        max_tokens=99,
        stop="END",
        user="u-1",
        tool_choice="none",
    ).as_job()
    assert job["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ab"},
    ]
    assert job["parameters"] == {"max_tokens": 30, "stop": ["END"], "tool_choice": "none"}
    assert job["metadata"] == {}  # `user` names the data subject, never kept in clear
    assert job["subject"] == "u-1"
    plan = chat_plan(job, None)
    assert plan.subject == "u-1" and "subject" not in plan.request
    assert plan.kind == "chat_completion" and plan.agent_id == "" and plan.model == "cb:smart-chat"
    assert plan.estimated_tokens > 30


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"n": 3}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
        ({"tool_choice": "required"}, "tool_choice"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "messages"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages"),
    ],
)
def test_what_is_not_supported_is_a_400_naming_its_parameter(body: dict, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        _request(**body).as_job()
    assert openai_error(refused.value)["error"]["param"] == param


def test_unknown_fields_and_bad_roles_fail_validation() -> None:
    with pytest.raises(ValidationError):
        _request(temperature_x=1)
    with pytest.raises(ValidationError):
        _request(messages=[{"role": "wizard", "content": "x"}])


def test_errors_take_openais_shape_and_statuses() -> None:
    assert openai_error(RateLimited("slow down"))["error"] == {
        "message": "slow down", "type": "rate_limit_error", "param": None, "code": "rate_limited"
    }  # fmt: skip
    missing = openai_error(ModelNotFound("unknown model 'x'"))["error"]
    assert missing["param"] == "model" and missing["code"] == "model_not_found"


RESULT = {
    "execution_id": EXECUTION,
    "status": "completed",
    "response": {"content": "Hi!", "tool_calls": [], "finish_reason": "stop"},
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cached_tokens": 1},
    "metadata": {"model_requested": "cb:smart-chat", "model_resolved": "gpt-4o-mini"},
}


def _sdk(body: bytes, content_type: str) -> openai.OpenAI:
    """The SDK over a transport that answers `body`: its parser reads our bytes."""
    transport = httpx.MockTransport(
        lambda _: httpx.Response(200, content=body, headers={"content-type": content_type})
    )
    return openai.OpenAI(
        api_key="k", base_url="http://x/v1", http_client=httpx.Client(transport=transport)
    )


def test_a_completion_parses_in_the_sdk() -> None:
    import json

    body = json.dumps(completion(RESULT, created=1)).encode()
    parsed = _sdk(body, "application/json").chat.completions.create(model="m", messages=[])
    assert parsed.choices[0].message.content == "Hi!" and parsed.model == "gpt-4o-mini"
    assert parsed.usage.prompt_tokens_details.cached_tokens == 1


def test_chunks_parse_in_the_sdk_with_tool_calls_and_usage() -> None:
    framer = ChunkFramer(EXECUTION, include_usage=True, created=1)
    events = [
        ("execution_start", {"model_resolved": "gpt-4o-mini"}),
        ("content_chunk", {"delta": "Let me look."}),
        ("tool_call_delta", {"delta": {"index": 0, "id": "c1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": ""}}}),
        ("tool_call_delta", {"delta": {"index": 0, "function": {"arguments": '{"city":"P"}'}}}),
        ("tool_result", {"name": "not shown"}),
        ("usage_update", {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
        ("execution_complete", {**RESULT, "response": {"content": "Let me look.",
                                                       "finish_reason": "tool_calls"}}),
    ]  # fmt: skip
    body = framer([{"event": e, "data": d} for e, d in events])
    assert body.endswith(b"data: [DONE]\n\n")
    chunks = list(
        _sdk(body, "text/event-stream").chat.completions.create(model="m", messages=[], stream=True)
    )
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].model == "gpt-4o-mini"
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or []]
    assert "".join(t.function.arguments for t in calls) == '{"city":"P"}'
    assert chunks[-2].choices[0].finish_reason == "tool_calls"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7


def test_an_error_mid_stream_raises_in_the_sdk() -> None:
    framer = ChunkFramer(EXECUTION, include_usage=False)
    body = framer([
        {"event": "execution_start", "data": {"model_resolved": "m"}},
        {"event": "error", "data": {"type": "provider_error", "message": "boom"}},
    ])  # fmt: skip
    stream = _sdk(body, "text/event-stream").chat.completions.create(
        model="m", messages=[], stream=True
    )
    with pytest.raises(openai.APIError, match="boom"):
        list(stream)
