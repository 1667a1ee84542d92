"""Every registered codec meets the `Codec` Protocol, function by function."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from domain.codecs import CODECS, codec_for
from domain.codecs.base import Codec
from domain.config import ModelSpec
from domain.llm import ChatMessage, LLMRequest

MEMBERS = ("build_call", "parse_response", "parse_stream_line", "map_error")


def _parameters(fn: Callable[..., Any], *, drop_self: bool) -> list[tuple[str, bool]]:
    """Each parameter's name and whether it has a default, in order."""
    params = list(inspect.signature(fn).parameters.values())
    if drop_self:
        params = params[1:]
    return [(p.name, p.default is not inspect.Parameter.empty) for p in params]


def test_the_protocol_has_exactly_the_four_codec_functions() -> None:
    declared = {
        n for n, v in vars(Codec).items() if inspect.isfunction(v) and not n.startswith("_")
    }
    assert declared == set(MEMBERS)


@pytest.mark.parametrize("provider_type", sorted(CODECS))
@pytest.mark.parametrize("member", MEMBERS)
def test_a_codec_provides_each_function_with_the_protocols_parameters(
    provider_type: str, member: str
) -> None:
    fn = getattr(codec_for(provider_type), member, None)
    assert callable(fn), f"{provider_type} codec lacks {member}"
    expected = _parameters(getattr(Codec, member), drop_self=True)
    assert _parameters(fn, drop_self=False) == expected


@pytest.mark.parametrize("provider_type", sorted(CODECS))
def test_codec_for_hands_out_the_registered_module_itself(provider_type: str) -> None:
    assert codec_for(provider_type) is CODECS[provider_type]
    assert inspect.ismodule(codec_for(provider_type))


def test_an_unknown_provider_type_has_no_codec() -> None:
    with pytest.raises(KeyError):
        codec_for("no-such-provider")


STREAM_ENDS = {
    "openai": "data: [DONE]",
    "azure_openai": "data: [DONE]",
    "anthropic": 'data: {"type": "message_stop"}',
    "ollama": '{"model": "m", "message": {"role": "assistant", "content": ""}, "done": true}',
    "gemini": 'data: {"candidates": [{"content": {"parts": [{"text": ""}]}, '
    '"finishReason": "STOP"}]}',
}


@pytest.mark.parametrize("provider_type", sorted(CODECS))
def test_the_end_of_a_stream_is_a_fresh_chunk_marked_last(provider_type: str) -> None:
    codec = codec_for(provider_type)
    first = codec.parse_stream_line(STREAM_ENDS[provider_type])
    second = codec.parse_stream_line(STREAM_ENDS[provider_type])
    assert first is not None and second is not None
    assert first.last and second.last
    assert first is not second


def test_every_registered_codec_has_a_stream_end_sample_here() -> None:
    assert set(STREAM_ENDS) == set(CODECS)


@pytest.mark.parametrize("provider_type", sorted(CODECS))
def test_every_codec_maps_a_server_error_to_a_retryable_gateway_error(provider_type: str) -> None:
    err = codec_for(provider_type).map_error(503, None, None)
    assert err.retryable


@pytest.mark.parametrize("provider_type", sorted(CODECS))
def test_every_codec_builds_a_call_for_a_plain_request(provider_type: str) -> None:
    model = ModelSpec(
        provider="p",
        context_window=8192,
        max_output_tokens=1024,
        input_price_per_mtok=1.0,
        output_price_per_mtok=2.0,
    )
    request = LLMRequest(model="m", messages=[ChatMessage(role="user", content="hi")])
    call, _ = codec_for(provider_type).build_call(request, model, "wire-model", "k")
    assert call.path and isinstance(call.body, dict)
