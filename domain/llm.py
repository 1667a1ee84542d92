"""The unified LLM request and response every provider codec translates to and from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None


class LLMRequest(BaseModel):
    """A provider-neutral chat request for one configured concrete model."""

    model: str
    messages: list[ChatMessage]
    parameters: dict[str, Any] = Field(default_factory=dict)
    tools: list[dict[str, Any]] = Field(default_factory=list)
    stream: bool = False


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, read from the provider's prompt cache
    estimated: bool = False  # counted by the gateway: the provider reported none

    @classmethod
    def of(cls, prompt: int, completion: int, cached: int = 0, estimated: bool = False) -> Usage:
        """Usage whose total is prompt plus completion."""
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            cached_tokens=cached,
            estimated=estimated,
        )

    def plus(self, other: Usage) -> Usage:
        """Usage of two model calls together (the turns of a tool loop)."""
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            total_tokens=self.total_tokens + other.total_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            estimated=self.estimated or other.estimated,
        )

    def merged(self, newer: Usage) -> Usage:
        """Usage from two stream events (Anthropic sends input and output counts apart)."""
        prompt = max(self.prompt_tokens, newer.prompt_tokens)
        completion = max(self.completion_tokens, newer.completion_tokens)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=max(prompt + completion, newer.total_tokens),
            cached_tokens=max(self.cached_tokens, newer.cached_tokens),
        )


class LLMResponse(BaseModel):
    """A provider-neutral reply."""

    content: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage
    provider_model: str = ""
    provider_response_id: str | None = None


class HttpCall(BaseModel):
    """What a codec asks the transport to send: path relative to the base URL, headers, body."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(slots=True)
class StreamChunk:
    """One parsed piece of a provider stream: text, tool-call fragments, finish, usage.
    A plain dataclass: the codecs make one per line of a stream, and nothing validates it."""

    delta: str = ""
    tool_call_deltas: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage | None = None
    last: bool = False  # the stream's final piece: the codec saw its end


def estimate_tokens(text: str) -> int:
    """A provider-neutral token estimate (about four characters a token)."""
    return math.ceil(len(text) / 4)


def estimate_prompt_tokens(messages: list[ChatMessage]) -> int:
    """An estimate of a prompt's tokens, for routing and for usage a stream did not report."""
    return sum(estimate_tokens(m.content or "") + 4 for m in messages)
