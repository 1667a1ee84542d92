"""LLM provider queries in the legacy shape, and `configureLlmProvider` (platform admin)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from typing import Any

import strawberry
from strawberry.types import Info

from api.graphql.context import runtime, tenant, who
from api.graphql.legacy_types import LlmProviderGQL, provider_to_gql
from api.provider_views import provider_views
from api.runtime import Runtime


@strawberry.type
class ProviderQueries:
    @strawberry.field
    async def llm_providers(self, info: Info) -> list[LlmProviderGQL]:
        """The configured providers, with their models and health."""
        return await _providers(info, None)

    @strawberry.field
    async def llm_provider(self, info: Info, id: str) -> LlmProviderGQL | None:  # noqa: A002
        found = await _providers(info, id)
        return found[0] if found else None


async def _providers(info: Info, only: str | None) -> list[LlmProviderGQL]:
    """The providers (or `only`) in the legacy shape. `lastCheck` is the time of the last
    real outcome the provider actor saw; a provider none was seen for is checked now (when
    the query asks for `lastCheck`), from the caller's tenant actor."""
    caller = who(info)
    caller.require("agents:read")
    rt = runtime(info)
    views = await provider_views(rt, only)
    unchecked = [v["id"] for v in views if not v["health"]["last_check"]]
    checked: dict[str, Any] = {}
    if unchecked and _asks_for(info.selected_fields, "lastCheck"):
        client = tenant(info, caller)
        answers = await asyncio.gather(*(client.check_provider(p) for p in unchecked))
        checked = {a["provider"]: a for a in answers}
        views = await provider_views(rt, only)  # the outcomes as the provider actors have them
    configured = _configured_at(rt)
    out = []
    for view in views:
        health = view["health"]
        if not health["last_check"] and view["id"] in checked:
            # the outcome is on its way to the provider actor (reported in batches)
            health["last_check"] = _iso(checked[view["id"]]["checked_at"])
        out.append(provider_to_gql(view, configured))
    return out


def _asks_for(selections: list[Any], name: str) -> bool:
    """Whether a field of `name` is selected anywhere below `selections`."""
    for selection in selections:
        if getattr(selection, "name", None) == name:
            return True
        if _asks_for(getattr(selection, "selections", None) or [], name):
            return True
    return False


def _configured_at(rt: Runtime) -> str:
    """When the configuration was written (the providers' legacy created/updated)."""
    return _iso(os.path.getmtime(rt.settings.config_path))


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat()
