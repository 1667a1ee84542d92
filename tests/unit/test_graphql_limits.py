"""GraphQL operation limits and what a caller without credentials may ask, on documents and
on the schema itself (in process, no Ray): refused before anything runs, with a code."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from graphql import get_introspection_query, parse

from api.graphql.anonymous import private_root_fields
from api.graphql.limits import Limits, limit_errors

INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)


DEFAULTS = Limits()


def _codes(query: str, limits: Limits = DEFAULTS) -> list[str]:
    return [e.extensions["code"] for e in limit_errors(parse(query), limits)]


def _aliases(n: int) -> str:
    return "{ " + " ".join(f"a{i}: agents {{ id }}" for i in range(n)) + " }"


def test_the_defaults_admit_real_operations_and_graphiql_introspection() -> None:
    assert _codes(INTROSPECTION) == []
    assert _codes(_aliases(Limits().max_aliases)) == []
    legacy = """query ($id: String!) { agent(id: $id) { id name llmProvider { model }
      llmConfig { temperature stopSequences } prompts { system } createdAt } health }"""
    assert _codes(legacy) == []


def test_each_limit_has_its_code() -> None:
    assert _codes(_aliases(500)) == ["TOO_MANY_ALIASES", "QUERY_TOO_COMPLEX"]
    assert _codes(_aliases(31)) == ["TOO_MANY_ALIASES"]
    deep = "{ agents " + "{ a " * 10 + "}" * 11
    assert _codes(deep) == ["QUERY_TOO_DEEP"]
    assert _codes("{ agents " + "{ a " * 9 + "}" * 10) == []  # 10 deep: at the limit
    wide = "{ agents { " + " ".join(f"f{i}" for i in range(600)) + " } }"
    assert _codes(wide) == ["QUERY_TOO_COMPLEX"]
    small = Limits(max_tokens=100, max_depth=2, max_aliases=1, max_fields=3)
    assert _codes("{ a: agents { id } b: agents { id } }", small) == [
        "TOO_MANY_ALIASES",
        "QUERY_TOO_COMPLEX",
    ]


def test_introspection_counts_except_its_one_to_one_oftype_chain() -> None:
    """`ofType` does not fan out; `fields { type { fields …` does, and is counted."""
    chain = '{ __type(name: "X") { ' + "ofType { " * 20 + "name" + " }" * 22
    assert _codes(chain) == []
    cycle = "{ __schema { types { " + "fields { type { " * 5 + "name" + " } }" * 5 + " } } }"
    assert _codes(cycle) == ["QUERY_TOO_DEEP"]


def test_fragments_count_at_every_spread_but_are_measured_once() -> None:
    # 2**40 fields if each spread were walked; measured once per fragment it is instant
    bomb = "query { ...F40 } fragment F0 on Query { health } " + " ".join(
        f"fragment F{i} on Query {{ ...F{i - 1} x{i}: agents {{ ...F{i - 1} }} }}"
        for i in range(1, 41)
    )
    assert set(_codes(bomb)) == {"TOO_MANY_ALIASES", "QUERY_TOO_DEEP", "QUERY_TOO_COMPLEX"}
    cyclic = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A health }"
    assert _codes(cyclic) == []  # graphql-core's own validation refuses the cycle


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Limits()),
        ({"CB_GRAPHQL_MAX_DEPTH": "4", "CB_GRAPHQL_MAX_ALIASES": "7"},
         Limits(max_depth=4, max_aliases=7)),
        ({"CB_GRAPHQL_MAX_TOKENS": "900", "CB_GRAPHQL_MAX_FIELDS": "12"},
         Limits(max_tokens=900, max_fields=12)),
    ],
)  # fmt: skip
def test_limits_come_from_the_environment(env: dict[str, str], expected: Limits) -> None:
    assert Limits.from_env(env) == expected


@pytest.mark.parametrize("bad", ["0", "-3", "ten", ""])
def test_a_bad_limit_is_refused_at_start(bad: str) -> None:
    with pytest.raises(ValueError, match="CB_GRAPHQL_MAX_DEPTH must be a positive integer"):
        Limits.from_env({"CB_GRAPHQL_MAX_DEPTH": bad})


def test_only_health_and_introspection_are_public() -> None:
    assert private_root_fields(parse("{ health __typename }")) == []
    assert private_root_fields(parse(INTROSPECTION)) == []
    assert private_root_fields(parse("{ health agents { id } }")) == ["agents"]
    spread = "{ ...F ... on Query { llmProviders { id } } } fragment F on Query { agents { id } }"
    assert private_root_fields(parse(spread)) == ["agents", "llmProviders"]
    mutation = "mutation { createAgent(input: {}) { id } } query Q { health }"
    assert private_root_fields(parse(mutation)) == ["createAgent"]
    # a field's own selections are not root fields
    assert private_root_fields(parse("{ __schema { types { name } } }")) == []


async def _run(query: str, principal: Any) -> Any:
    from api.graphql.schema import schema

    return await schema.execute(query, context_value={"principal": principal})


async def test_the_schema_refuses_before_running() -> None:
    """The extensions are wired: nothing resolves (no runtime in the context to reach)."""
    anonymous = await _run("{ health agents { id } }", None)
    assert anonymous.data is None
    assert [e.extensions["code"] for e in anonymous.errors] == ["UNAUTHENTICATED"]
    assert "agents" in anonymous.errors[0].message
    assert (await _run("{ health }", None)).data == {"health": "ok"}
    introspected = await _run(INTROSPECTION, None)
    assert introspected.errors is None and introspected.data["__schema"]["queryType"]

    someone = object()  # never reached: refused before any resolver asks who it is
    too_many = await _run(_aliases(500), someone)
    assert too_many.data is None
    assert too_many.errors[0].extensions["code"] == "TOO_MANY_ALIASES"
    huge = await _run("{ " + "health " * 6000 + "}", someone)
    assert [e.extensions["code"] for e in huge.errors] == ["QUERY_TOO_LARGE"]
    assert "5000 tokens" in huge.errors[0].message
    nested = await _run("{" + "a{" * 300 + "b" + "}" * 301, someone)
    assert [e.extensions["code"] for e in nested.errors] == ["QUERY_TOO_DEEP"]


async def test_a_refused_document_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A client's mistake is no server error, and a legacy `apiKey` may be written inline."""
    inline_key = """mutation { createAgent(input: {name: "a", description: "b",
      llmProvider: {providerType: "openai", model: "x", apiKey: "sk-never-logged"},
      llmConfig: {temperature: 1, stopSequences: [], nope: 1},
      prompts: {system: "s", userTemplate: "u"}, capabilities: [], tools: []}) { id } }"""
    with caplog.at_level(logging.DEBUG):
        invalid = await _run(inline_key, object())
        too_deep = await _run(inline_key.replace("{ id }", "{ " + "a { " * 12 + "}" * 13), None)
    assert "nope" in invalid.errors[0].message
    assert too_deep.errors[0].extensions["code"] == "QUERY_TOO_DEEP"
    assert "sk-never-logged" not in caplog.text
