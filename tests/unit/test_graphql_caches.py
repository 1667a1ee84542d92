"""The document cache: each distinct operation parsed and validated once, errors unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from api.graphql.caches import _parsed, _validated
from api.graphql.schema import schema


class _Anyone:
    """A caller the root-field check lets through (no resolver below asks it anything)."""

    tenant_id = "t"


def _context(principal: Any) -> dict[str, Any]:
    return {"principal": principal, "request": None, "runtime": None}


@pytest.mark.asyncio
async def test_a_repeated_operation_is_parsed_and_validated_once() -> None:
    query = "query Probe { health __typename }"
    parsed, validated = _parsed.cache_info().misses, _validated.cache_info().misses
    for _ in range(5):
        result = await schema.execute(query, context_value=_context(_Anyone()))
        assert result.errors is None and result.data == {"health": "ok", "__typename": "Query"}
    assert _parsed.cache_info().misses == parsed + 1
    assert _validated.cache_info().misses == validated + 1


@pytest.mark.asyncio
async def test_errors_are_reported_as_without_the_cache_every_time() -> None:
    for _ in range(2):
        invalid = await schema.execute("{ health nope }", context_value=_context(_Anyone()))
        assert invalid.errors and "Cannot query field 'nope'" in invalid.errors[0].message
        broken = await schema.execute("{ health ", context_value=_context(_Anyone()))
        assert broken.errors and broken.errors[0].message.startswith("Syntax Error")
        # refused before validation by an earlier extension: no caller, a private field
        refused = await schema.execute("{ health nope }", context_value=_context(None))
        assert refused.errors and refused.errors[0].extensions == {"code": "UNAUTHENTICATED"}
