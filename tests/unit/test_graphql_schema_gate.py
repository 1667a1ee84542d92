"""The committed schema and the breaking-change gate.

- `api/graphql/schema.graphql` is the live schema (else: `make graphql-schema`);
- it keeps every promise of `api/graphql/legacy_baseline.graphql` (graphql-core's
  `find_breaking_changes`, nothing ignored);
- and the gate does catch a removed legacy field, a retyped argument and the like, shown on
  copies of the committed schema changed in one way each."""

from __future__ import annotations

import difflib
from collections.abc import Callable

import pytest
from graphql import (
    BreakingChangeType,
    GraphQLArgument,
    GraphQLField,
    GraphQLID,
    GraphQLInputField,
    GraphQLInt,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLString,
    build_schema,
    print_schema,
)

from api.graphql.export import COMMAND, COMMITTED, LEGACY_BASELINE, live_sdl
from api.graphql.gate import breaking_changes, report


def test_the_committed_schema_is_the_live_schema() -> None:
    live, committed = live_sdl(), COMMITTED.read_text(encoding="utf-8")
    diff = "".join(
        list(
            difflib.unified_diff(
                committed.splitlines(keepends=True),
                live.splitlines(keepends=True),
                "committed",
                "live",
            )
        )[:60]
    )
    assert committed == live, f"{COMMITTED} is not the live schema; run {COMMAND}\n{diff}"


def test_the_committed_schema_keeps_the_legacy_contract() -> None:
    changes = breaking_changes(
        LEGACY_BASELINE.read_text(encoding="utf-8"), COMMITTED.read_text(encoding="utf-8")
    )
    assert not changes, (
        f"{COMMITTED.name} breaks the legacy contract of {LEGACY_BASELINE.name}:\n"
        + report(changes)
    )


def test_the_baseline_is_the_whole_legacy_contract() -> None:
    """Spot checks that the baseline holds what LEGACY_GRAPHQL.md promises (so the gate
    above guards something): every operation, and the strict and the loose spots."""
    legacy = build_schema(LEGACY_BASELINE.read_text(encoding="utf-8"))
    assert legacy.query_type and legacy.mutation_type and legacy.subscription_type
    assert set(legacy.query_type.fields) == {
        "health", "agent", "agents", "stateAgentConfigs", "agentExecution",
        "resourceExecutions", "llmProviders", "llmProvider", "budgetStatus", "costAnalytics",
    }  # fmt: skip
    assert set(legacy.mutation_type.fields) == {
        "createAgent", "createStateAgentConfig", "triggerStateAgents", "llmChatCompletion",
        "configureLlmProvider", "setBudget",
    }  # fmt: skip
    assert set(legacy.subscription_type.fields) == {
        "agentExecutionStream", "llmStream", "costUpdates",
    }  # fmt: skip
    agent = legacy.query_type.fields["agent"]
    assert str(agent.args["id"].type) == "String!" and str(agent.type) == "AgentDefinitionGQL"
    assert str(legacy.get_type("LlmProviderGQL").fields["id"].type) == "ID!"
    assert str(legacy.get_type("AgentLLMProviderInput").fields["apiKey"].type) == "String!"
    assert str(legacy.get_type("LlmChatCompletionInput").fields["stop"].type) == "[String!]"
    assert str(legacy.get_type("BudgetInput").fields["userId"].type) == "String"
    assert len(legacy.get_type("AgentExecutionStatusGQL").values) == 6


def _committed() -> GraphQLSchema:
    return build_schema(COMMITTED.read_text(encoding="utf-8"))


def _remove_field(schema: GraphQLSchema, type_name: str, field: str) -> None:
    del schema.get_type(type_name).fields[field]


def _retype_argument(schema: GraphQLSchema, type_name: str, field: str, arg: str, to) -> None:
    schema.get_type(type_name).fields[field].args[arg] = GraphQLArgument(to)


def _loosen_field(schema: GraphQLSchema, type_name: str, field: str) -> None:
    old = schema.get_type(type_name).fields[field]
    schema.get_type(type_name).fields[field] = GraphQLField(old.type.of_type)


def _remove_enum_value(schema: GraphQLSchema, type_name: str, value: str) -> None:
    del schema.get_type(type_name).values[value]


def _require_new_input(schema: GraphQLSchema, type_name: str, field: str) -> None:
    schema.get_type(type_name).fields[field] = GraphQLInputField(GraphQLNonNull(GraphQLInt))


BREAKS: dict[str, tuple[Callable[[GraphQLSchema], None], BreakingChangeType, str]] = {
    "a removed legacy field": (
        lambda s: _remove_field(s, "AgentDefinitionGQL", "tools"),
        BreakingChangeType.FIELD_REMOVED,
        "AgentDefinitionGQL.tools",
    ),
    "a removed legacy operation": (
        lambda s: _remove_field(s, "Subscription", "llmStream"),
        BreakingChangeType.FIELD_REMOVED,
        "Subscription.llmStream",
    ),
    "a retyped argument (String! to ID!)": (
        lambda s: _retype_argument(s, "Query", "agent", "id", GraphQLNonNull(GraphQLID)),
        BreakingChangeType.ARG_CHANGED_KIND,
        "Query.agent(id:)",
    ),
    "an optional argument made required": (
        lambda s: _retype_argument(
            s, "Query", "budgetStatus", "userId", GraphQLNonNull(GraphQLString)
        ),
        BreakingChangeType.ARG_CHANGED_KIND,
        "Query.budgetStatus(userId:)",
    ),
    "a non-null output made nullable": (
        lambda s: _loosen_field(s, "LlmProviderHealthGQL", "lastCheck"),
        BreakingChangeType.FIELD_CHANGED_KIND,
        "LlmProviderHealthGQL.lastCheck",
    ),
    "a removed enum value": (
        lambda s: _remove_enum_value(s, "AgentExecutionStatusGQL", "TIMEOUT"),
        BreakingChangeType.VALUE_REMOVED_FROM_ENUM,
        "TIMEOUT",
    ),
    "a new required input field": (
        lambda s: _require_new_input(s, "LlmConfigInput", "seed"),
        BreakingChangeType.REQUIRED_INPUT_FIELD_ADDED,
        "LlmConfigInput.seed",
    ),
}


@pytest.mark.parametrize("change", list(BREAKS))
def test_the_gate_catches(change: str) -> None:
    modify, kind, names = BREAKS[change]
    schema = _committed()
    modify(schema)
    changed = print_schema(schema)
    found = breaking_changes(LEGACY_BASELINE.read_text(encoding="utf-8"), changed)
    assert [(c.type, names in c.description) for c in found] == [(kind, True)], report(found)


def test_the_gate_lets_additions_through() -> None:
    schema = _committed()
    schema.query_type.fields["somethingNew"] = GraphQLField(GraphQLString)
    schema.get_type("LlmConfigInput").fields["seed"] = GraphQLInputField(GraphQLInt)
    schema.get_type("AgentDefinitionGQL").fields["extra"] = GraphQLField(GraphQLInt)
    found = breaking_changes(LEGACY_BASELINE.read_text(encoding="utf-8"), print_schema(schema))
    assert found == [], report(found)
