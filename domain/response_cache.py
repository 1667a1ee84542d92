"""The response cache's rules: when an execution may be answered from the cache, under which
key, and how a cached answer is kept and given back. Pure; the store is `actors/cache_store.py`.

A key names the tenant, the resolved model, the agent and its version (a new version is a new
key: invalidation by version) and the request as the provider would see it (messages after
input guardrails, tools, the parameters that change the output). The cached entry is the
model's raw answer: output guardrails and placeholder restoration run again on every hit, so
one caller's personal data never reaches another through the cache.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.llm import ChatMessage, LLMResponse, Usage

Mode = Literal["exact", "semantic", "off"]
KEY_VERSION = 1
DEFAULT_TTL_S = 3600.0
MAX_TTL_S = 30 * 86400.0


class CacheSettings(BaseModel):
    """`cache` of a request, an agent or the tenant policy."""

    model_config = ConfigDict(extra="forbid")

    mode: Mode = "exact"
    ttl_s: float = Field(default=DEFAULT_TTL_S, gt=0, le=MAX_TTL_S)
    threshold: float | None = Field(
        default=None, ge=0.5, le=1.0, description="semantic: the least cosine similarity"
    )


@dataclass(frozen=True)
class CachePlan:
    """How one execution uses the cache: the settings that won, its key and semantic scope."""

    settings: CacheSettings
    key: str
    scope: str
    prompt: str  # what a semantic lookup embeds: the conversation's text

    @property
    def semantic(self) -> bool:
        return self.settings.mode == "semantic"


def chosen(
    request: dict[str, Any] | None,
    agent: dict[str, Any] | None,
    tenant: dict[str, Any] | None,
    temperature: float | None,
) -> CacheSettings | None:
    """The settings that apply (the request's, else the agent's, else the tenant's), or None
    for no caching. A tenant default caches only unsampled requests (temperature unset or 0):
    a sampled one is cached only when the request or its agent asks for it."""
    for source, settings in (("request", request), ("agent", agent), ("tenant", tenant)):
        if settings is None:
            continue
        parsed = CacheSettings.model_validate(settings)
        if parsed.mode == "off":
            return None
        if source == "tenant" and temperature not in (None, 0, 0.0):
            return None
        return parsed
    return None


def plan_for(
    settings: CacheSettings,
    tenant_id: str,
    model: str,
    agent_id: str,
    agent_version: int,
    messages: list[ChatMessage],
    tools: list[dict[str, Any]] | None,
    parameters: dict[str, Any],
) -> CachePlan:
    """The key (sha256 of the canonical request) and scope of an execution."""
    scope = f"{model}|{agent_id or '-'}:{agent_version}"
    request = {
        "v": KEY_VERSION,
        "tenant": tenant_id,
        "scope": scope,
        "messages": [m.model_dump(exclude_none=True) for m in messages],
        "tools": tools or [],
        "parameters": parameters,
    }
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    key = hashlib.sha256(canonical.encode()).hexdigest()
    prompt = "\n".join(f"{m.role}: {m.content}" for m in messages if m.content)
    return CachePlan(settings=settings, key=key, scope=scope, prompt=prompt)


class CachedAnswer(BaseModel):
    """What the cache keeps of a completed execution: the model's raw answer and its price."""

    content: str
    tool_calls: list[dict[str, Any]] = Field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage
    cost_usd: float
    model: str
    provider: str | None = None
    provider_model: str = ""
    execution_id: str
    created_at: float

    def response(self) -> LLMResponse:
        """The answer as a provider reply that counted no tokens (none were processed)."""
        return LLMResponse(
            content=self.content,
            tool_calls=self.tool_calls,
            finish_reason=self.finish_reason,
            usage=Usage(),
            provider_model=self.provider_model,
        )


@dataclass(frozen=True)
class Hit:
    """A cache hit: the answer, and how close its prompt was (1.0 for an exact hit)."""

    answer: CachedAnswer
    similarity: float = 1.0
