"""A tenant's response cache, as its execution runner uses it: look up before the model is
called, remember a completed answer after. The entries live in the cache store
(`actors/cache_store.py`: Redis, or SQLite in the data directory), never in the actor, so
they survive its restart and are shared by every node.

The cache never fails an execution: a store or embeddings failure is a miss (logged, and
counted in `cb_cache_lookups_total{result="error"}`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

from actors import metrics
from actors.cache_store import CacheStore, open_store
from actors.embeddings import embed
from actors.settings import Settings, provider_api_key, provider_base_url
from domain.config import Config
from domain.response_cache import CachedAnswer, CachePlan, Hit

log = logging.getLogger(__name__)


class ResponseCache:
    """One tenant's view of the cache store; the store is opened on first use."""

    def __init__(
        self, settings: Settings, tenant_id: str, http: Callable[[], httpx.AsyncClient]
    ) -> None:
        self.settings = settings
        self.tenant_id = tenant_id
        self.http = http
        self._store: CacheStore | None = None

    def store(self) -> CacheStore:
        if self._store is None:
            self._store = open_store(
                self.settings.cache_url, self.settings.data_dir, self.settings.instance
            )
        return self._store

    async def lookup(
        self, plan: CachePlan, config: Config, own_keys: dict[str, str]
    ) -> tuple[Hit | None, list[float] | None]:
        """The entry for `plan`'s key, else (semantic) the closest one above the threshold;
        and the prompt's vector, for `remember` (None unless semantic)."""
        vector: list[float] | None = None
        try:
            found = await self.store().get(self.tenant_id, plan.key)
            if found is not None:
                self._count("hit")
                return Hit(CachedAnswer.model_validate(found)), None
            if plan.semantic:
                vector = await self._embed(plan.prompt, config, own_keys)
                threshold = plan.settings.threshold or config.cache.semantic.threshold
                near = await self.store().nearest(self.tenant_id, plan.scope, vector, threshold)
                if near is not None:
                    similarity, _, entry = near
                    self._count("semantic_hit")
                    return Hit(CachedAnswer.model_validate(entry), round(similarity, 6)), vector
        except Exception as exc:  # the cache is an optimisation: a failure is a miss
            log.warning("response cache lookup failed (%s); answering without it", _why(exc))
            self._count("error")
            return None, vector
        self._count("miss")
        return None, vector

    async def remember(
        self, plan: CachePlan, answer: CachedAnswer, vector: list[float] | None
    ) -> None:
        """Keep a completed answer under `plan`'s key for its TTL (and its vector, if any)."""
        try:
            await self.store().put(
                self.tenant_id, plan.key, answer.model_dump(mode="json"),
                plan.settings.ttl_s, vector, plan.scope if vector is not None else None,
            )  # fmt: skip
        except Exception as exc:
            log.warning("response cache write failed (%s)", _why(exc))

    async def clear(self) -> int:
        """Forget every entry of the tenant; how many there were."""
        return await self.store().clear(self.tenant_id)

    async def close(self) -> None:
        if self._store is not None:
            await self._store.close()

    async def _embed(self, text: str, config: Config, own_keys: dict[str, str]) -> list[float]:
        semantic = config.cache.semantic
        spec = config.providers.get(semantic.provider)
        if spec is None:
            raise LookupError(f"the semantic cache's provider {semantic.provider!r} is unknown")
        key = own_keys.get(semantic.provider) or provider_api_key(spec)
        return await embed(
            self.http(), provider_base_url(spec), key, semantic.model, text, semantic.timeout_s
        )

    def _count(self, result: str) -> None:
        metrics.RECORDER.inc("cb_cache_lookups_total", (result,), tenant=self.tenant_id)


def answer_of(
    content: str,
    tool_calls: list[dict[str, Any]],
    finish_reason: str | None,
    outcome: Any,
    execution_id: str,
) -> CachedAnswer:
    """What the cache keeps of a completed execution's `Outcome`."""
    return CachedAnswer(
        content=content,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=outcome.usage,
        cost_usd=outcome.cost_usd,
        model=outcome.model_resolved,
        provider=outcome.provider,
        provider_model=outcome.provider_model or "",
        execution_id=execution_id,
        created_at=time.time(),
    )


def _why(exc: BaseException) -> str:
    """An exception's class only: its message may carry a URL or a credential."""
    return type(exc).__name__
