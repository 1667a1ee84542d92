"""Parsed and validated documents, kept per query text: clients send the same few operations
again and again, and graphql-core's validation of one costs ~2 ms against this schema.

One extension, placed last in `EXTENSIONS` so the limits, the caller check and the legacy
alias rules have had their say: a document that fails to parse is left to strawberry (which
reports the error as before); validation is skipped when an earlier extension already refused
the operation, and cached by (document, rules) otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse, validate
from strawberry.extensions import SchemaExtension

MAX_DOCUMENTS = 512


@lru_cache(maxsize=MAX_DOCUMENTS)
def _parsed(query: str, options: tuple[tuple[str, Any], ...]) -> DocumentNode:
    return parse(query, **dict(options))


@lru_cache(maxsize=MAX_DOCUMENTS)
def _validated(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[Callable[..., Any], ...]
) -> list[GraphQLError]:
    return validate(schema, document, rules)


class DocumentCache(SchemaExtension):
    """Parse and validate each distinct operation once (bounded LRU, shared by requests)."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is None and context.query:
            try:
                options = tuple(sorted(context.parse_options.items()))
                context.graphql_document = _parsed(context.query, options)
            except GraphQLError:
                pass  # strawberry parses it again and reports the error its own way
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        rules: Sequence[Callable[..., Any]] = context.validation_rules
        if context.pre_execution_errors is None and context.graphql_document is not None:
            context.pre_execution_errors = list(
                _validated(context.schema._schema, context.graphql_document, tuple(rules))
            )
        yield
