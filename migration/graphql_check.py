"""Checking one GraphQL document against a schema: validation as the gateway does it (legacy
aliases accepted), deprecated fields, arguments and enum values used, and a suggested fix for
each error."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    Lexer,
    OperationDefinitionNode,
    Source,
    TokenKind,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    is_input_object_type,
    is_interface_type,
    is_object_type,
    parse,
    specified_rules,
    validate,
    visit,
)
from graphql.validation import NoUnusedFragmentsRule, VariablesInAllowedPositionRule

from api.graphql.legacy_aliases import legacy_rules

# fragments may live in other literals of the checked files, so unused ones are not errors
SERVER_RULES = tuple(
    r for r in legacy_rules(tuple(specified_rules)) if r is not NoUnusedFragmentsRule
)
REASON = re.compile(
    r"Use (?P<use>.+?) instead\. Deprecated on (?P<on>[\d-]+); removed after (?P<after>[\d-]+)\."
)
MCP_HINT = (
    "MCP servers are `mcpServers`, `registerMcpServer` and `removeMcpServer` now"
    " (or REST `/api/v1/mcp/servers`)"
)
# legacy fields the new schema does not have, and what to use instead
LEGACY_FIELDS: dict[str, str] = {
    **{name: MCP_HINT for name in (
        "mcpServer", "mcpServersByTenant", "createMcpServer", "updateMcpServer", "deleteMcpServer",
        "configureMcpOAuth", "configureMcpJwt", "mcpOAuthProviders", "mcpServerCapabilities",
        "mcpServerHealth", "initiateMcpOAuth", "completeMcpOAuth", "mcpServerStatusUpdates",
        "mcpSessionEvents",
    )},
    "executeAgent": "run an agent with REST `POST /api/v1/agents/{id}/execute`"
    " (SDK: `client.agents.execute`)",
    "resourceUpdates": "workflows and resources are not part of the gateway: no replacement",
    "workflowEvents": "workflows and resources are not part of the gateway: no replacement",
}  # fmt: skip


@dataclass
class Problem:
    """A validation error of a definition."""

    message: str
    line: int
    fix: str | None = None


@dataclass
class DeprecatedUse:
    coordinate: str
    replacement: str
    deprecated_on: str | None
    removed_after: str | None
    line: int


@dataclass
class Definition:
    """One operation or fragment of a document, as checked."""

    name: str  # the operation's name, "(anonymous)", or "fragment Name"
    line: int  # within the document, 1-based
    start: int = 0  # character offsets within the document
    end: int = 0
    problems: list[Problem] = field(default_factory=list)
    deprecated: list[DeprecatedUse] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.problems:
            return "invalid"
        return "deprecated" if self.deprecated else "valid"


def fragment_pool(texts: list[str]) -> dict[str, str]:
    """The fragment definitions (name → text) of the documents that parse."""
    pool: dict[str, str] = {}
    for text in texts:
        try:
            doc = parse(text)
        except GraphQLSyntaxError:
            continue
        for node in doc.definitions:
            if isinstance(node, FragmentDefinitionNode) and node.loc:
                pool.setdefault(node.name.value, text[node.loc.start : node.loc.end])
    return pool


def check_document(
    schema: GraphQLSchema, text: str, pool: dict[str, str] | None = None
) -> list[Definition]:
    """Each definition of `text`, validated (with fragments it spreads taken from `pool`)."""
    try:
        doc = parse(text)
    except GraphQLSyntaxError as exc:
        line = exc.locations[0].line if exc.locations else 1
        fix = "fix the GraphQL syntax"
        name = _leading_name(text)
        return [Definition(name, line, 0, len(text), [Problem(exc.message, line, fix)])]
    definitions = _definitions(doc, text)
    combined = text + "".join("\n" + frag for frag in _borrowed(doc, pool or {}))
    full = parse(combined) if combined != text else doc
    for error in validate(schema, full, SERVER_RULES):
        _attach(definitions, error, schema)
    for error in validate(schema, full, [VariablesInAllowedPositionRule]):
        if not any(p.message == error.message for d in definitions for p in d.problems):
            _attach(definitions, error, schema, note=True)
    _find_deprecated(schema, full, combined, definitions)
    return definitions


def _leading_name(text: str) -> str:
    """The name of a document's first operation or fragment, read from its first tokens."""
    lexer = Lexer(Source(text))
    try:
        keyword, name = lexer.advance(), lexer.advance()
    except GraphQLSyntaxError:
        return "(anonymous)"
    if keyword.kind != TokenKind.NAME or name.kind != TokenKind.NAME:
        return "(anonymous)"
    if keyword.value == "fragment":
        return f"fragment {name.value}"
    return name.value if keyword.value in ("query", "mutation", "subscription") else "(anonymous)"


def _definitions(doc: DocumentNode, text: str) -> list[Definition]:
    out = []
    for node in doc.definitions:
        loc = node.loc
        start, end = (loc.start, loc.end) if loc else (0, 0)
        line = text.count("\n", 0, start) + 1
        if isinstance(node, OperationDefinitionNode):
            name = node.name.value if node.name else "(anonymous)"
            out.append(Definition(name, line, start, end))
        elif isinstance(node, FragmentDefinitionNode):
            out.append(Definition(f"fragment {node.name.value}", line, start, end))
    return out


def _borrowed(doc: DocumentNode, pool: dict[str, str]) -> list[str]:
    """Texts of the pool's fragments that `doc` spreads (transitively) but does not define."""
    defined = {n.name.value for n in doc.definitions if isinstance(n, FragmentDefinitionNode)}
    wanted, out = _spreads(doc), []
    while wanted:
        name = wanted.pop()
        if name in defined or name not in pool:
            continue
        defined.add(name)
        out.append(pool[name])
        wanted |= _spreads(parse(pool[name]))
    return out


def _spreads(doc: DocumentNode) -> set[str]:
    names: set[str] = set()

    class Spreads(Visitor):
        def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
            names.add(node.name.value)

    visit(doc, Spreads())
    return names


def _owner(definitions: list[Definition], offset: int) -> Definition | None:
    return next((d for d in definitions if d.start <= offset < d.end), None)


def _attach(
    definitions: list[Definition], error: GraphQLError, schema: GraphQLSchema, note: bool = False
) -> None:
    positions = error.positions or []
    owner = next((o for p in positions if (o := _owner(definitions, p))), None)
    if owner is None:
        if positions or not definitions:
            return  # in a borrowed fragment: reported where that fragment is defined
        owner = definitions[0]
    line = error.locations[0].line if error.locations else owner.line
    fix = suggest_fix(error.message, schema)
    if note:
        owner.notes.append(f"accepted as a legacy alias: {error.message} fix: {fix}")
    else:
        owner.problems.append(Problem(error.message, line, fix))


def _find_deprecated(
    schema: GraphQLSchema, doc: DocumentNode, text: str, defs: list[Definition]
) -> None:
    info = TypeInfo(schema)

    def record(coordinate: str, reason: str | None, node: Any) -> None:
        owner = _owner(defs, node.loc.start) if node.loc else None
        if reason is None or owner is None:
            return
        match = REASON.search(reason)
        use = match["use"] if match else reason
        on, after = (match["on"], match["after"]) if match else (None, None)
        line = text.count("\n", 0, node.loc.start) + 1
        if not any(d.coordinate == coordinate and d.line == line for d in owner.deprecated):
            owner.deprecated.append(DeprecatedUse(coordinate, use, on, after, line))

    class Deprecated(Visitor):
        def enter_field(self, node: FieldNode, *_: Any) -> None:
            parent, fdef = info.get_parent_type(), info.get_field_def()
            if parent is not None and fdef is not None:
                record(f"{parent.name}.{node.name.value}", fdef.deprecation_reason, node)

        def enter_argument(self, node: Any, *_: Any) -> None:
            arg, parent, fdef = info.get_argument(), info.get_parent_type(), info.get_field_def()
            if arg is not None and parent is not None and fdef is not None:
                name = f"{parent.name}.{fdef.ast_node.name.value if fdef.ast_node else '?'}"
                record(f"{name}({node.name.value}:)", arg.deprecation_reason, node)

        def enter_enum_value(self, node: Any, *_: Any) -> None:
            value, type_ = info.get_enum_value(), get_named_type(info.get_input_type())
            if value is not None and type_ is not None:
                record(f"{type_.name}.{node.value}", value.deprecation_reason, node)

        def enter_object_field(self, node: Any, *_: Any) -> None:
            parent = get_named_type(info.get_parent_input_type())
            if is_input_object_type(parent) and node.name.value in parent.fields:
                reason = parent.fields[node.name.value].deprecation_reason
                record(f"{parent.name}.{node.name.value}", reason, node)

    visit(doc, TypeInfoVisitor(info, Deprecated()))


def _quoted(names: list[str]) -> str:
    return " or ".join(f"`{n}`" for n in names)


def _mean(message: str) -> list[str]:
    match = re.search(r"Did you mean (.+)\?$", message)
    return re.findall(r"'([^']+)'", match[1]) if match else []


def _close(word: str, candidates: list[str]) -> list[str]:
    lower = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(word.lower(), list(lower), n=3, cutoff=0.6)
    return [lower[h] for h in hits]


def _field_names(schema: GraphQLSchema, type_name: str) -> list[str]:
    type_ = schema.get_type(type_name)
    return list(type_.fields) if is_object_type(type_) or is_interface_type(type_) else []


def suggest_fix(message: str, schema: GraphQLSchema) -> str | None:
    """A suggested fix for a validation error's message, when there is one to give."""
    if m := re.match(
        r"Variable '\$(\w+)' of type '([^']+)' used in position expecting type '([^']+)'", message
    ):
        return f"declare ${m[1]} as {m[3]}"
    if m := re.match(r"Unknown type '(\w+)'", message):
        names = _mean(message) or _close(
            m[1], [n for n in schema.type_map if not n.startswith("__")]
        )
        return f"use the type {_quoted(names)}" if names else None
    if m := re.match(r"Cannot query field '(\w+)' on type '(\w+)'", message):
        if m[1] in LEGACY_FIELDS:
            return LEGACY_FIELDS[m[1]]
        names = _mean(message) or _close(m[1], _field_names(schema, m[2]))
        return (
            f"use the field {_quoted(names)}"
            if names
            else f"remove `{m[1]}`: `{m[2]}` has no such field"
        )
    if m := re.match(r"Unknown argument '(\w+)' on field '(\w+)\.(\w+)'", message):
        names = _mean(message)
        return f"use the argument {_quoted(names)}" if names else f"remove the argument `{m[1]}`"
    if m := re.match(
        r"Field '(\w+)' must not have a selection since type '([^']+)' has no subfields", message
    ):
        return (
            f"remove the selection set of `{m[1]}` (a `{m[2]}`: parse its JSON text on the client)"
        )
    if m := re.match(
        r"Field '(\w+)' of type '([^']+)' must have a selection of subfields", message
    ):
        fields = _field_names(schema, get_named_type_name(m[2]))
        pick = "id" if "id" in fields else (fields[0] if fields else "…")
        return f"select the subfields you need, e.g. `{m[1]} {{ {pick} }}`"
    if m := re.match(r"Unknown fragment '(\w+)'", message):
        return f"define fragment `{m[1]}` in this document or in one of the checked files"
    if m := re.match(
        r"Argument '([^']+)' of type '([^']+)' is required, but it was not provided", message
    ):
        return f"pass the argument {m[1]}"
    names = _mean(message)
    return f"use {_quoted(names)}" if names else None


def get_named_type_name(type_text: str) -> str:
    return type_text.strip("[]!")
