"""Rewrites inside GraphQL literals: the legacy type aliases the gateway accepts
(`$id: ID!` for a `String!` argument, `LlmchatCompletionInput`) are spelled as the schema
does; invalid operations are listed to be fixed by hand."""

from __future__ import annotations

import re

from graphql import (
    GraphQLSchema,
    GraphQLSyntaxError,
    NamedTypeNode,
    OperationDefinitionNode,
    TypeNode,
    parse,
    validate,
)
from graphql.validation import VariablesInAllowedPositionRule

from api.graphql.legacy_aliases import ALIASES
from migration.edits import EditSet, ManualItem
from migration.graphql_check import check_document
from migration.source_scan import Literal

_MISPLACED = re.compile(
    r"Variable '\$(\w+)' of type '([^']+)' used in position expecting type '([^']+)'"
)


def _named(node: TypeNode) -> NamedTypeNode:
    while not isinstance(node, NamedTypeNode):
        node = node.type  # type: ignore[attr-defined]
    return node


def alias_fixes(schema: GraphQLSchema, text: str) -> list[tuple[int, int, str]]:
    """(start, end, new name) character spans of variable types to respell."""
    try:
        doc = parse(text)
    except GraphQLSyntaxError:
        return []
    out = []
    for error in validate(schema, doc, [VariablesInAllowedPositionRule]):
        match = _MISPLACED.match(error.message)
        nodes = error.nodes or []
        if not match or not nodes:
            continue
        declared, expected = match[2].strip("[]!"), match[3].strip("[]!")
        if (declared, expected) not in ALIASES or match[2].replace(declared, expected) != match[3]:
            continue
        var_def = nodes[0]
        named = _named(var_def.type)  # type: ignore[attr-defined]
        if named.loc and (named.loc.start, named.loc.end, expected) not in out:
            out.append((named.loc.start, named.loc.end, expected))
    return out


def fix_literals(
    schema: GraphQLSchema, literals: list[Literal], edits: EditSet, pool: dict[str, str]
) -> list[ManualItem]:
    """Respell aliases in the exact literals (edits), and list the invalid operations."""
    manual = []
    for lit in literals:
        spans = alias_fixes(schema, lit.text) if lit.exact else []
        for start, end, name in spans:
            begin = lit.start_byte + len(lit.text[:start].encode())
            stop = lit.start_byte + len(lit.text[:end].encode())
            edits.add(begin, stop, name)
        for definition in check_document(schema, lit.text, pool):
            for problem in definition.problems:
                what = f"GraphQL {definition.name}: {problem.message}"
                fix = problem.fix or "fix the operation (see `cb migrate check-ops`)"
                manual.append(ManualItem(lit.path, lit.line + problem.line - 1, what, fix))
    return manual


def is_operation(text: str) -> bool:
    try:
        return any(isinstance(d, OperationDefinitionNode) for d in parse(text).definitions)
    except GraphQLSyntaxError:
        return False


def root_fields(text: str) -> list[str]:
    """The root fields the operations of `text` select (empty if it does not parse)."""
    try:
        doc = parse(text)
    except GraphQLSyntaxError:
        return []
    out = []
    for node in doc.definitions:
        if isinstance(node, OperationDefinitionNode):
            out += [s.name.value for s in node.selection_set.selections if hasattr(s, "name")]
    return out
