"""The pure parts of the agent's §12.1 fields and of agent management: REST URLs that exist,
the streaming options as the request schema accepts them, model mappings from the models
listing, tools with health, cursors, the filtered listing and the update's validation."""

from __future__ import annotations

from typing import Any

import pytest

from domain.errors import InvalidRequest


def test_the_endpoints_are_routes_of_the_app_under_the_base_url() -> None:
    from api.graphql.agent_extensions import endpoints
    from api.routes import agents, executions

    urls = endpoints("https://gw.example.com/pg/", "a1")
    assert urls.execute == "https://gw.example.com/pg/api/v1/agents/a1/execute"
    assert urls.stream == "https://gw.example.com/pg/api/v1/agents/a1/execute/stream"
    assert urls.history == "https://gw.example.com/pg/api/v1/executions?agent_id=a1"
    assert urls.resume == "https://gw.example.com/pg/api/v1/executions/{execution_id}/stream"
    served = {(m, r.path) for router in (agents.router, executions.router)
              for r in router.routes for m in r.methods}  # fmt: skip
    assert ("POST", "/api/v1/agents/{agent_id}/execute") in served
    assert ("POST", "/api/v1/agents/{agent_id}/execute/stream") in served
    assert ("GET", "/api/v1/executions") in served
    assert ("GET", "/api/v1/executions/{execution_id}/stream") in served


def test_the_streaming_config_is_what_the_stream_endpoint_accepts() -> None:
    from api.graphql.agent_extension_types import streaming_config
    from domain.schemas import StreamOptions

    config = streaming_config("http://x/stream")
    assert config.heartbeat_seconds == StreamOptions().heartbeat_s
    assert (config.min_heartbeat_seconds, config.max_heartbeat_seconds) == (0.5, 300)
    assert set(config.on_disconnect_options) == {"cancel", "continue"}
    assert config.default_on_disconnect == StreamOptions().on_disconnect
    assert "content_chunk" in config.event_types and "execution_complete" in config.event_types
    for value in (config.min_heartbeat_seconds, config.max_heartbeat_seconds):
        StreamOptions(heartbeat_s=value)  # the bounds are accepted


LISTING = {
    "models": [
        {"id": "cb:fast", "kind": "virtual", "source": "tenant", "strategy": "fastest",
         "task": None, "candidates": ["m1", "m2"], "resolves_to": "m2", "fallbacks": ["m1"],
         "provider": "p2", "capabilities": ["chat"]},
        {"id": "cb:none", "kind": "virtual", "source": "platform", "strategy": "balanced",
         "task": None, "candidates": ["m3"], "resolves_to": None, "fallbacks": [],
         "provider": None, "capabilities": [], "unavailable": "no provider configured"},
        {"id": "m1", "kind": "concrete", "provider": "p1", "capabilities": ["chat", "tools"],
         "available": False, "breaker": "open"},
    ]
}  # fmt: skip


def test_the_mapping_is_the_tenants_view_of_the_agents_model() -> None:
    from api.graphql.agent_extension_types import mapping_of

    [fast] = mapping_of("cb:fast", LISTING)
    assert (fast.kind, fast.source, fast.strategy, fast.resolves_to, fast.fallbacks) == (
        "virtual", "tenant", "fastest", "m2", ["m1"])  # fmt: skip
    assert fast.available and fast.unavailable_reason is None
    [none] = mapping_of("cb:none", LISTING)
    assert not none.available and none.unavailable_reason == "no provider configured"
    [concrete] = mapping_of("m1", LISTING)
    assert (concrete.kind, concrete.resolves_to, concrete.available) == ("concrete", "m1", False)
    assert mapping_of("not-allowed", LISTING) == []


def test_tool_configurations_keep_the_agents_order_and_show_a_missing_tool() -> None:
    from api.graphql.agent_extension_types import tool_configurations

    listing = {"tools": [
        {"name": "calc", "description": "adds", "input_schema": {"type": "object"},
         "source": "builtin", "health": {"status": "ready"}},
        {"name": "search", "description": "finds", "input_schema": {}, "source": "srv",
         "health": {"status": "failed", "last_error": "gone"}},
    ]}  # fmt: skip
    tools = tool_configurations(["search", "calc", "gone"], listing)
    assert [(t.name, t.source, t.health.status) for t in tools] == [
        ("search", "srv", "failed"),
        ("calc", "builtin", "ready"),
        ("gone", "unknown", "missing"),
    ]
    assert tools[0].health.last_error == "gone" and tools[1].input_schema == {"type": "object"}


def test_a_cursor_goes_round_and_anything_else_is_a_clear_error() -> None:
    from api.graphql import cursors

    assert cursors.decode(cursors.encode(1.5, "x"), 2) == [1.5, "x"]
    for bad in ("not a cursor", cursors.encode(1.0), "%%%", ""):
        with pytest.raises(InvalidRequest, match="not a cursor"):
            cursors.decode(bad, 2)
    for size in (0, 101, -1):
        with pytest.raises(InvalidRequest, match="first"):
            cursors.page_size(size)


def _agent(n: int, **extra: Any) -> dict[str, Any]:
    return {"id": f"id{n}", "name": f"Agent {n}", "model": "m1", "created_at": f"2026-01-0{n}",
            "updated_at": f"2026-01-0{n}", "tools": [], "capabilities": [], "tags": [],
            "parameters": {}, **extra}  # fmt: skip


def test_the_listing_filters_and_pages_oldest_first() -> None:
    from api.graphql.agent_management import AgentFilterInput, page_of

    views = [_agent(3, tags=["x"]), _agent(1, model="m2", capabilities=["math"]),
             _agent(2, tags=["x"], tools=["calc"]), _agent(4, name="Other")]  # fmt: skip
    first = page_of(views, None, 2, None)
    assert [e.node.id for e in first.edges] == ["id1", "id2"] and first.total_count == 4
    assert first.page_info.has_next_page and not first.page_info.has_previous_page
    second = page_of(views, None, 2, first.page_info.end_cursor)
    assert [e.node.id for e in second.edges] == ["id3", "id4"]
    assert not second.page_info.has_next_page and second.page_info.has_previous_page

    def ids(**where: Any) -> list[str]:
        return [e.node.id for e in page_of(views, AgentFilterInput(**where), 50, None).edges]

    assert ids(name="agent") == ["id1", "id2", "id3"]
    assert ids(model="m2") == ["id1"] and ids(capability="math") == ["id1"]
    assert ids(tag="x") == ["id2", "id3"] and ids(tag="x", tool="calc") == ["id2"]
    assert ids(name="nobody") == []


def test_an_update_is_the_rest_patch_and_bad_input_says_where() -> None:
    from api.graphql.agent_management import (
        AgentParametersInput,
        AgentUpdateInput,
        changes_of,
    )

    changes = changes_of(
        AgentUpdateInput(
            description="new", parameters=AgentParametersInput(temperature=0.2, max_tokens=50)
        )
    )
    assert changes == {"description": "new", "parameters": {"temperature": 0.2, "max_tokens": 50}}
    assert changes_of(AgentUpdateInput()) == {}
    with pytest.raises(InvalidRequest) as raised:
        changes_of(AgentUpdateInput(name="", parameters=AgentParametersInput(temperature=9.0)))
    message = raised.value.message
    assert "input.name" in message and "input.parameters.temperature" in message
