"""What a caller without credentials may ask of GraphQL: `health` and introspection (the
schema is public: it is committed in `api/graphql/schema.graphql`). Anything else is refused
before it runs with `extensions.code` `UNAUTHENTICATED`; credentials that are present but
wrong never get this far (the context getter answers HTTP 401)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Header, Request
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
from strawberry.extensions import SchemaExtension

from api.auth import Principal, tenant_principal

PUBLIC_FIELDS = frozenset({"health", "__typename", "__schema", "__type"})


async def caller_if_any(
    request: Request,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> Principal | None:
    """The authenticated caller, or None when the request carries no `Authorization` header;
    a credential that is present is checked as on REST (401/403 when it is wrong)."""
    if authorization is None:
        return None
    return await tenant_principal(request, x_tenant_id, authorization)


def private_root_fields(document: DocumentNode) -> list[str]:
    """The root fields of `document`'s operations that need a caller, in order, once each."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    names: dict[str, None] = {}
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            for name in _root_fields(definition.selection_set, fragments, set()):
                if name not in PUBLIC_FIELDS:
                    names[name] = None
    return list(names)


def _root_fields(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    seen: set[str],
) -> Iterator[str]:
    """The field names of a root selection set; each fragment is read once."""
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in fragments and name not in seen:
                seen.add(name)
                yield from _root_fields(fragments[name].selection_set, fragments, seen)


class RequireCaller(SchemaExtension):
    """Refuses, before validation and execution, an operation without a caller that asks for
    more than the public fields."""

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        values = context.context if isinstance(context.context, dict) else {}
        document = context.graphql_document
        if (
            values.get("principal") is None
            and document is not None
            and context.pre_execution_errors is None
        ):
            private = private_root_fields(document)
            if private:
                context.pre_execution_errors = [
                    GraphQLError(
                        f"authentication required for {', '.join(private)}: send "
                        "Authorization: Bearer <api key or JWT> and X-Tenant-ID "
                        "(only health and introspection answer without them)",
                        extensions={"code": "UNAUTHENTICATED"},
                    )
                ]
        yield
