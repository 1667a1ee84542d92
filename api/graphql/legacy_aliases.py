"""Type names legacy clients spell their own way, accepted in variable definitions.

The legacy TypeScript SDK declares `mutation($input: LlmchatCompletionInput!)` for
`llmChatCompletion(input: LlmChatCompletionInput!)`, and `query GetAgent($id: ID!)` for
`agent(id: String!)`. graphql-core's `VariablesInAllowedPositionRule` refuses both; this
module's rule replaces it and also accepts a variable whose named type is a documented alias
of the expected one (wrappers — lists and non-null — are checked exactly as the spec says).
The values coerce alike: the alias input type has the same fields, and ID's values are
strings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    GraphQLType,
    OperationDefinitionNode,
    ValidationRule,
    get_named_type,
    is_input_object_type,
    is_list_type,
    is_non_null_type,
    is_nullable_type,
    type_from_ast,
)
from graphql.validation.rules.variables_in_allowed_position import (
    VariablesInAllowedPositionRule,
    allowed_variable_usage,
)
from strawberry.extensions import SchemaExtension

# (the type a variable declares, the type the position expects): the pairs accepted
ALIASES: frozenset[tuple[str, str]] = frozenset(
    {
        ("LlmchatCompletionInput", "LlmChatCompletionInput"),
        ("ID", "String"),
        ("String", "ID"),
    }
)


def _with_named(type_: GraphQLType, named: GraphQLNamedType) -> GraphQLType:
    """`type_` with its innermost named type replaced by `named` (wrappers kept)."""
    if is_non_null_type(type_):
        return GraphQLNonNull(_with_named(type_.of_type, named))  # type: ignore[attr-defined]
    if is_list_type(type_):
        return GraphQLList(_with_named(type_.of_type, named))  # type: ignore[attr-defined]
    return named


def legacy_allowed(
    schema: GraphQLSchema,
    var_type: GraphQLType,
    var_default: Any,
    location_type: GraphQLType,
    location_default: Any,
) -> bool:
    """The spec's allowed usage, or the same with the variable's named type read as its
    documented alias of the location's."""
    if allowed_variable_usage(schema, var_type, var_default, location_type, location_default):
        return True
    declared, expected = get_named_type(var_type), get_named_type(location_type)
    if declared is None or expected is None or (declared.name, expected.name) not in ALIASES:
        return False
    renamed = _with_named(var_type, expected)
    return allowed_variable_usage(schema, renamed, var_default, location_type, location_default)


class LegacyVariablesInAllowedPositionRule(VariablesInAllowedPositionRule):
    """`VariablesInAllowedPositionRule`, with the legacy aliases allowed (see module)."""

    def leave_operation_definition(self, operation: OperationDefinitionNode, *_args: Any) -> None:
        schema = self.context.schema
        for usage in self.context.get_recursive_variable_usages(operation):
            node, location = usage.node, usage.type
            name = node.name.value
            var_def = usage.fragment_variable_definition or self.var_def_map.get(name)
            if not var_def or not location:
                continue
            var_type = type_from_ast(schema, var_def.type)
            if var_type and not legacy_allowed(
                schema, var_type, var_def.default_value, location, usage.default_value
            ):
                self.report_error(
                    GraphQLError(
                        f"Variable '${name}' of type '{var_type}' used"
                        f" in position expecting type '{location}'.",
                        [var_def, node],
                    )
                )
            parent = usage.parent_type
            if is_input_object_type(parent) and parent.is_one_of and is_nullable_type(var_type):
                self.report_error(
                    GraphQLError(
                        f"Variable '${name}' is of type '{var_type}' but must be"
                        f" non-nullable to be used for OneOf Input Object '{parent}'.",
                        [var_def, node],
                    )
                )


def legacy_rules(rules: tuple[type[ValidationRule], ...]) -> tuple[type[ValidationRule], ...]:
    """`rules` with the standard variable-position rule replaced by the legacy one."""
    return tuple(
        LegacyVariablesInAllowedPositionRule if r is VariablesInAllowedPositionRule else r
        for r in rules
    )


class LegacyTypeAliases(SchemaExtension):
    """Validates with `LegacyVariablesInAllowedPositionRule` in place of the standard rule."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        context.validation_rules = legacy_rules(tuple(context.validation_rules))
        yield


__all__ = ["ALIASES", "LegacyTypeAliases", "legacy_allowed", "legacy_rules"]
