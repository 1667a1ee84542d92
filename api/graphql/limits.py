"""How big a GraphQL operation may be: tokens, depth, aliases and fields, refused before it
runs with an error whose `extensions.code` names the limit.

The token limit is strawberry's `MaxTokensLimiter` (the parser stops at the limit). Depth,
aliases and fields are counted here, on the parsed document, before graphql-core's own
validation (whose overlapping-fields rule is quadratic in the aliases), so an oversized
operation costs a parse and one walk. Each limit is set by an environment variable."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import MaxTokensLimiter

# `ofType` is introspection's one-to-one link down a wrapped type (`[String!]!`): it cannot
# fan out, so it does not count towards depth (GraphiQL's introspection query nests it 7 deep)
NOT_DEEPER = frozenset({"ofType"})
# what graphql-core's parser says when it stops at the token limit, or at its own nesting limit
TOKENS_EXCEEDED = "Document contains more than"
NESTED_TOO_DEEPLY = "Document is nested too deeply"


@dataclass(frozen=True)
class Limits:
    """The largest operation served; every one is a positive count."""

    max_tokens: int = 5000  # lexical tokens in the document (punctuation, names, values)
    max_depth: int = 10  # fields nested in one another, the root field counting 1
    max_aliases: int = 30  # aliased fields in the document
    max_fields: int = 500  # fields selected, each fragment counted at every spread

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Limits:
        """`CB_GRAPHQL_MAX_TOKENS`, `…_MAX_DEPTH`, `…_MAX_ALIASES`, `…_MAX_FIELDS`, or the
        defaults."""
        values = {}
        for name in ("max_tokens", "max_depth", "max_aliases", "max_fields"):
            raw = env.get(f"CB_GRAPHQL_{name.upper()}")
            if raw is None:
                continue
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"CB_GRAPHQL_{name.upper()} must be a positive integer")
            values[name] = int(raw)
        return cls(**values)


def limit_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """What in `document` is over `limits` (empty when nothing is), one error per limit."""
    size = _Sizes(document)
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    errors = []
    aliases = sum(size.of(op.selection_set).aliases for op in operations)
    if aliases > limits.max_aliases:
        errors.append(
            _error(
                f"the document has {aliases} aliases; at most {limits.max_aliases} are "
                "allowed (CB_GRAPHQL_MAX_ALIASES)",
                "TOO_MANY_ALIASES",
            )
        )
    for op in operations:
        name = op.name.value if op.name else "(anonymous)"
        measured = size.of(op.selection_set)
        if measured.depth > limits.max_depth:
            errors.append(
                _error(
                    f"operation {name} nests {measured.depth} fields deep; at most "
                    f"{limits.max_depth} are allowed (CB_GRAPHQL_MAX_DEPTH)",
                    "QUERY_TOO_DEEP",
                )
            )
        if measured.fields > limits.max_fields:
            errors.append(
                _error(
                    f"operation {name} selects {measured.fields} fields, counting each "
                    f"fragment at every spread; at most {limits.max_fields} are allowed "
                    "(CB_GRAPHQL_MAX_FIELDS)",
                    "QUERY_TOO_COMPLEX",
                )
            )
    return errors


def _error(message: str, code: str) -> GraphQLError:
    """A refusal of the whole document: no location, so no log line quotes the document (a
    legacy `apiKey` may be written in it)."""
    return GraphQLError(message, extensions={"code": code})


@dataclass(frozen=True)
class _Size:
    depth: int = 0
    fields: int = 0
    aliases: int = 0


class _Sizes:
    """The size of any selection set of one document, each fragment measured once (so a
    fragment spread twice in each of 30 nested fragments costs 30 measures, not 2**30)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.measured: dict[str, _Size] = {}
        self.measuring: set[str] = set()

    def of(self, selection_set: SelectionSetNode | None) -> _Size:
        depth = fields = aliases = 0
        for selection in selection_set.selections if selection_set else ():
            if isinstance(selection, FieldNode):
                below = self.of(selection.selection_set)
                own = 0 if selection.name.value in NOT_DEEPER else 1
                depth = max(depth, own + below.depth)
                fields += 1 + below.fields
                aliases += (selection.alias is not None) + below.aliases
                continue
            if isinstance(selection, InlineFragmentNode):
                inner = self.of(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                inner = self._fragment(selection.name.value)
            else:  # pragma: no cover - graphql-core has no other selection
                continue
            depth = max(depth, inner.depth)
            fields += inner.fields
            aliases += inner.aliases
        return _Size(depth, fields, aliases)

    def _fragment(self, name: str) -> _Size:
        """A fragment's size; an unknown or cyclic one counts nothing here (graphql-core's
        validation refuses it)."""
        if name in self.measured:
            return self.measured[name]
        fragment = self.fragments.get(name)
        if fragment is None or name in self.measuring:
            return _Size()
        self.measuring.add(name)
        size = self.measured[name] = self.of(fragment.selection_set)
        self.measuring.discard(name)
        return size


class QueryLimits(MaxTokensLimiter):
    """Refuses an operation over `limits` before graphql-core validates or runs it."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(max_token_count=limits.max_tokens)
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            if TOKENS_EXCEEDED in error.message:
                error.message = (
                    f"the document has more than {self.limits.max_tokens} tokens "
                    "(CB_GRAPHQL_MAX_TOKENS)"
                )
                _refuse_whole(error, "QUERY_TOO_LARGE")
            elif NESTED_TOO_DEEPLY in error.message:
                _refuse_whole(error, "QUERY_TOO_DEEP")

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None and context.pre_execution_errors is None:
            errors = limit_errors(context.graphql_document, self.limits)
            if errors:
                context.pre_execution_errors = errors  # graphql-core's validation is skipped
        yield


def _refuse_whole(error: GraphQLError, code: str) -> None:
    """The parser's error as a refusal of the whole document: coded, and without the place
    in the document (which a log line would quote)."""
    error.extensions = {"code": code}
    error.source = error.positions = error.locations = error.nodes = None
