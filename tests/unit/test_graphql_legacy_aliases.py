"""The legacy type aliases in variable definitions, and the legacy LLM/budget mappings."""

from __future__ import annotations

import pytest
from graphql import build_schema, parse, specified_rules, validate

from api.graphql.budgets import analytics_of, analytics_span, budget_body, budget_scope, status_of
from api.graphql.legacy_aliases import legacy_rules
from api.graphql.llm_types import (
    ChatMessageInput,
    LlmChatCompletionInput,
    chat_request,
    response_of,
)
from domain.errors import InvalidRequest

SDL = """
input ChatMessageInput { role: String!, content: String! }
input LlmChatCompletionInput { model: String!, messages: [ChatMessageInput!]! }
input LlmchatCompletionInput { model: String!, messages: [ChatMessageInput!]! }
input Other { model: String! }
type Q { agent(id: String!): String, byId(id: ID): String, names(ids: [String!]!): String }
type M { llmChatCompletion(input: LlmChatCompletionInput!): String }
schema { query: Q, mutation: M }
"""
SCHEMA = build_schema(SDL)
RULES = legacy_rules(tuple(specified_rules))


def problems(text: str, rules: tuple = RULES) -> list[str]:
    return [e.message for e in validate(SCHEMA, parse(text), rules)]


@pytest.mark.parametrize(
    "operation",
    [
        "mutation($input: LlmchatCompletionInput!) { llmChatCompletion(input: $input) }",
        "mutation($input: LlmChatCompletionInput!) { llmChatCompletion(input: $input) }",
        "query GetAgent($id: ID!) { agent(id: $id) }",
        "query($id: String) { byId(id: $id) }",
        "query($ids: [ID!]!) { names(ids: $ids) }",
        'query($id: ID = "x") { agent(id: $id) }',  # a default makes a nullable one fit
    ],
)
def test_legacy_spellings_validate(operation: str) -> None:
    assert problems(operation) == []


def test_the_standard_rule_refuses_them() -> None:
    assert problems("query GetAgent($id: ID!) { agent(id: $id) }", tuple(specified_rules))


@pytest.mark.parametrize(
    "operation",
    [
        "mutation($input: LlmchatCompletionInput) { llmChatCompletion(input: $input) }",
        "mutation($input: Other!) { llmChatCompletion(input: $input) }",
        "query($id: ID) { agent(id: $id) }",  # nullable into non-null, no default
        "query($id: Boolean!) { agent(id: $id) }",
        "query($ids: [ID]!) { names(ids: $ids) }",
        "query($id: [ID!]!) { agent(id: $id) }",
    ],
)
def test_what_stays_refused(operation: str) -> None:
    assert any("used in position expecting" in p for p in problems(operation))


def test_a_legacy_completion_becomes_the_openai_request() -> None:
    data = LlmChatCompletionInput(
        model="cb:smart-chat",
        messages=[ChatMessageInput(role="user", content="hi")],
        max_tokens=50,
        stop=["END"],
        user="u-1",
        project_id="p-9",
    )
    job = chat_request(data).as_job()
    assert job["model"] == "cb:smart-chat"
    assert job["parameters"] == {"max_tokens": 50, "stop": ["END"]}
    assert job["metadata"] == {"project_id": "p-9"}
    assert job["subject"] == "u-1"  # the data subject (`domain.shredding`)
    bad = LlmChatCompletionInput(model="m", messages=[], temperature=9)
    with pytest.raises(InvalidRequest, match="temperature") as err:
        chat_request(bad)
    assert "messages" in err.value.message


def test_a_result_in_the_legacy_shape() -> None:
    result = {
        "execution_id": "e-1",
        "response": {"content": "4", "finish_reason": "stop"},
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4,
                  "cost_usd": 0.000012},
        "metadata": {"model_resolved": "gpt-4o-mini", "provider": "openai", "attempts": 2,
                     "duration_ms": 12.6, "fallback_used": True,
                     "routing": {"strategy": "balanced"}},
    }  # fmt: skip
    got = response_of(result)
    assert (got.id, got.model, got.provider) == ("e-1", "gpt-4o-mini", "openai")
    assert got.choices[0].message.content == "4" and got.usage.estimated_cost == 0.000012
    info = got.routing_info
    assert (info.routing_strategy, info.latency_ms, info.retry_count) == ("balanced", 13, 1)
    assert info.fallback_used and info.selected_provider == "openai"


def test_budget_mapping() -> None:
    assert budget_scope(None) == "tenant" and budget_scope("a-1") == "agent:a-1"
    with pytest.raises(InvalidRequest, match="projectId"):
        budget_scope("../x")
    body = budget_body(100, "Monthly", 0.8, "hard")
    assert body == {"limit_usd": 100, "period": "month", "enforcement": "hard",
                    "thresholds": [0.8, 1.0]}  # fmt: skip
    assert budget_body(5, "daily", 1.0, "soft")["thresholds"] == [1.0]
    for period, warning in (("weekly", 0.8), ("monthly", 80), ("monthly", 0)):
        with pytest.raises(InvalidRequest):
            budget_body(100, period, warning, "hard")
    with pytest.raises(InvalidRequest, match="limit"):
        budget_body(-1, "daily", 0.5, "hard")
    status = {"scope": "tenant", "limit_usd": 10.0, "period": "month", "spent_usd": 8.5,
              "remaining_usd": 1.5, "thresholds": [0.5, 0.8, 1.0]}  # fmt: skip
    got = status_of(status)
    assert (got.budget_id, got.used, got.percentage_used, got.remaining) == (
        "tenant",
        8.5,
        85.0,
        1.5,
    )
    assert got.is_warning and not got.is_exhausted and "85.0%" in got.message


def test_cost_analytics_mapping() -> None:
    span = analytics_span("2025-01-01", "2025-01-31")
    assert span.as_api() == {"from": "2025-01-01T00:00:00Z", "to": "2025-02-01T00:00:00Z"}
    with pytest.raises(InvalidRequest, match="startDate"):
        analytics_span("2025-02-01", "2025-01-01")
    with pytest.raises(InvalidRequest, match="endDate"):
        analytics_span("2025-01-01", "soon")
    groups = {
        "provider": [{"provider": "openai", "cost_usd": 0.3, "total_tokens": 300},
                     {"provider": "anthropic", "cost_usd": 0.1, "total_tokens": 100}],
        "model": [{"model": "gpt-4o-mini", "cost_usd": 0.4, "total_tokens": 400}],
        "day": [{"day": "2025-01-02", "cost_usd": 0.4, "total_tokens": 400}],
    }  # fmt: skip
    got = analytics_of(span, groups)
    assert got.total_cost == 0.4 and got.total_tokens == 400
    assert got.average_cost_per_token == pytest.approx(0.001)
    assert got.provider_breakdown == {"openai": 0.3, "anthropic": 0.1}
    assert got.daily_costs == {"2025-01-02": 0.4}
