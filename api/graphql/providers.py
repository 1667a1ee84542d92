"""LLM provider queries in the legacy shape."""

from __future__ import annotations

import datetime as dt
import os

import strawberry
from strawberry.types import Info

from api.graphql.context import runtime, who
from api.graphql.legacy_types import LlmProviderGQL, provider_to_gql
from api.provider_views import provider_views
from api.runtime import Runtime


@strawberry.type
class ProviderQueries:
    @strawberry.field
    async def llm_providers(self, info: Info) -> list[LlmProviderGQL]:
        """The configured providers, with their models and health."""
        who(info).require("agents:read")
        times = _times(runtime(info))
        views = await provider_views(runtime(info))
        return [provider_to_gql(view, *times) for view in views]

    @strawberry.field
    async def llm_provider(self, info: Info, id: str) -> LlmProviderGQL | None:  # noqa: A002
        who(info).require("agents:read")
        found = await provider_views(runtime(info), id)
        return provider_to_gql(found[0], *_times(runtime(info))) if found else None


def _times(rt: Runtime) -> tuple[str, str]:
    """When the configuration was written (the providers' legacy created/updated), and now."""
    written = os.path.getmtime(rt.settings.config_path)
    now = dt.datetime.now(dt.UTC)
    return dt.datetime.fromtimestamp(written, dt.UTC).isoformat(), now.isoformat()
