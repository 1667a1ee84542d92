"""Deprecated GraphQL fields: which they are, and the tracking of their use.

A field is deprecated with `deprecation_reason=deprecated("Type.field")`, which also puts it
in `DEPRECATIONS` (the replacement and the dates). `DeprecationTracking`, a schema
extension, reads each executed operation for the deprecated fields and arguments it selects
(fragments followed, `@skip`/`@include` honoured), counts one use per field per operation
for the caller's tenant, and sets the `Deprecation` (RFC 9745) and `Sunset` (RFC 8594)
headers of the response. Counts are kept per replica and recorded as one event per flush
interval (`DeprecationLog`), never one write per request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import weakref
from collections.abc import Iterator
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLSkipDirective,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    get_operation_ast,
)
from graphql.execution.values import VariableValues, get_directive_values, get_variable_values
from strawberry.extensions import SchemaExtension

from api.clients import ReadModels
from domain.deprecations import (
    Deprecation,
    UsageTally,
    deprecation_header,
    sunset_header,
)

DEPRECATED_ON = dt.date(2026, 12, 2)
SUNSET_ON = dt.date(2027, 6, 30)
DEPRECATIONS: dict[str, Deprecation] = {
    d.coordinate: d
    for d in (
        Deprecation("Query.agents", "`agentList` (filters, cursor pagination)",
                    DEPRECATED_ON, SUNSET_ON),
        Deprecation("AgentDefinitionGQL.llmProvider",
                    "`virtualModelMappings` (the model as the tenant resolves it)",
                    DEPRECATED_ON, SUNSET_ON),
        Deprecation("Mutation.llmChatCompletion", "`POST /v1/chat/completions`",
                    DEPRECATED_ON, SUNSET_ON),
        Deprecation("Subscription.llmStream",
                    '`POST /v1/chat/completions` with `"stream": true`',
                    DEPRECATED_ON, SUNSET_ON),
    )
}  # fmt: skip

FLUSH_S = 2.0
MAX_CACHED = 512  # operations whose deprecated fields are remembered
log = logging.getLogger(__name__)


def deprecated(coordinate: str) -> str:
    """The `deprecation_reason` of the field at `coordinate` (`Type.field`)."""
    return DEPRECATIONS[coordinate].reason()


def deprecated_selections(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: dict[str, Any] | None,
) -> frozenset[str]:
    """Coordinates of the deprecated fields (`Type.field`) and arguments
    (`Type.field(arg:)`) the operation executes."""
    operation = get_operation_ast(document, operation_name)
    root = schema.get_root_type(operation.operation) if operation else None
    if operation is None or root is None:
        return frozenset()
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    values = coerced if isinstance(coerced, VariableValues) else None
    found: set[str] = set()
    walked: set[str] = set()  # each fragment once: its fields do not depend on where it is

    def walk(parent: GraphQLNamedType | None, selections: SelectionSetNode) -> None:
        for node in selections.selections:
            if not _included(node, values):
                continue
            if isinstance(node, FieldNode):
                found.update(_field_uses(parent, node))
                field = _field(parent, node)
                if field is not None and node.selection_set is not None:
                    walk(get_named_type(field.type), node.selection_set)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                walk(schema.get_type(condition.name.value) if condition else parent,
                     node.selection_set)  # fmt: skip
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in walked:
                walked.add(node.name.value)
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    walk(schema.get_type(fragment.type_condition.name.value),
                         fragment.selection_set)  # fmt: skip

    walk(root, operation.selection_set)
    return frozenset(found)


def _field(parent: GraphQLNamedType | None, node: FieldNode) -> Any:
    if isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
        return parent.fields.get(node.name.value)
    return None


def _field_uses(parent: GraphQLNamedType | None, node: FieldNode) -> Iterator[str]:
    field = _field(parent, node)
    if field is None or parent is None:
        return
    name = node.name.value
    if field.deprecation_reason is not None:
        yield f"{parent.name}.{name}"
    for argument in node.arguments or ():
        defined = field.args.get(argument.name.value)
        if defined is not None and defined.deprecation_reason is not None:
            yield f"{parent.name}.{name}({argument.name.value}:)"


def _included(node: Any, variables: VariableValues | None) -> bool:
    """False when `@skip(if: true)` or `@include(if: false)` leaves the node out."""
    if not node.directives:
        return True
    try:
        skip = get_directive_values(GraphQLSkipDirective, node, variables)
        include = get_directive_values(GraphQLIncludeDirective, node, variables)
    except Exception:  # a bad value is the executor's to report; count the field
        return True
    return not (skip and skip.get("if") is True) and not (include and include.get("if") is False)


class DeprecationLog:
    """One replica's counts of deprecated field use, recorded (as one `DeprecatedUsage`
    event) every `FLUSH_S` while there is something to record."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models
        self.tally = UsageTally()
        self._flusher: asyncio.Task[None] | None = None

    def note(self, tenant_id: str, fields: frozenset[str]) -> None:
        """Count one use of each field; a flush is due within `FLUSH_S`."""
        self.tally.add(tenant_id, sorted(fields), time.time())
        if self._flusher is None or self._flusher.done():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # outside an event loop: the next flush takes these too
                return
            self._flusher = loop.create_task(self._flush_soon())

    async def flush(self) -> None:
        """Record what was counted so far (a failure is logged; those counts are lost)."""
        rows = self.tally.take()
        if self.tally.dropped:
            log.warning("deprecations: %d uses over the buffer not counted", self.tally.dropped)
            self.tally.dropped = 0
        if not rows:
            return
        try:
            await self.read_models.record_deprecations(rows)
        except Exception as exc:  # the requests were answered; the usage record misses these
            log.error("deprecations: could not record %d rows: %s", len(rows), type(exc).__name__)

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_S)
        await self.flush()


_logs: weakref.WeakKeyDictionary[ReadModels, DeprecationLog] = weakref.WeakKeyDictionary()


def deprecation_log(read_models: ReadModels) -> DeprecationLog:
    """The replica's log, kept beside its read-model client."""
    found = _logs.get(read_models)
    if found is None:
        found = _logs[read_models] = DeprecationLog(read_models)
    return found


_seen: dict[tuple[str, str | None], frozenset[str]] = {}


def _used(execution_context: Any) -> frozenset[str]:
    """The operation's deprecated selections, remembered per query text unless directives
    (whose variables may differ) decide what runs."""
    query = execution_context.query or ""
    key = (query, execution_context.operation_name)
    cacheable = "@skip" not in query and "@include" not in query
    if cacheable and key in _seen:
        return _seen[key]
    used = deprecated_selections(
        execution_context.schema._schema,
        execution_context.graphql_document,
        execution_context.operation_name,
        execution_context.variables,
    )
    if cacheable:
        if len(_seen) >= MAX_CACHED:
            _seen.clear()
        _seen[key] = used
    return used


class DeprecationTracking(SchemaExtension):
    """Counts each executed operation's deprecated fields for the caller's tenant and marks
    the HTTP response with `Deprecation` and `Sunset`."""

    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context
        if context.graphql_document is None:
            return
        used = _used(context)
        if not used:
            return
        state = context.context if isinstance(context.context, dict) else {}
        principal, runtime = state.get("principal"), state.get("runtime")
        if principal is not None and runtime is not None:
            deprecation_log(runtime.read_models).note(principal.tenant_id, used)
        response = state.get("response")
        known = [DEPRECATIONS[c] for c in sorted(used) if c in DEPRECATIONS]
        if response is not None and known and hasattr(response, "headers"):
            response.headers["Deprecation"] = deprecation_header(known)
            response.headers["Sunset"] = sunset_header(known)
