"""The GraphQL schema, composed from one module per area, and its FastAPI router.

Every resolver is tenant-scoped. An area adds its `…Queries`/`…Mutations` class to the
lists below."""

from __future__ import annotations

from typing import Any, cast

import strawberry
from fastapi import Header, Request, WebSocket
from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.fastapi import GraphQLRouter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.errors import audit_refusal
from api.graphql.agent_management import AgentManagementMutations, AgentManagementQueries
from api.graphql.agents import AgentMutations, AgentQueries
from api.graphql.anonymous import RequireCaller, caller_if_any
from api.graphql.budgets import BudgetMutations, BudgetQueries
from api.graphql.caches import DocumentCache
from api.graphql.deprecated_usage import DeprecationQueries
from api.graphql.deprecation import DeprecationTracking
from api.graphql.endpoint import GraphQLEndpoint
from api.graphql.error_codes import error_extensions
from api.graphql.executions import ExecutionMutations, ExecutionQueries
from api.graphql.legacy_aliases import LegacyTypeAliases
from api.graphql.limits import Limits, QueryLimits
from api.graphql.llm import PLATFORM_ADMIN, LlmMutations, is_platform_admin
from api.graphql.llm_types import LlmchatCompletionInput
from api.graphql.providers import ProviderQueries
from api.graphql.subscriptions import CostSubscriptions, ExecutionSubscriptions
from api.graphql.tools import ToolMutations, ToolQueries
from api.graphql.websocket import WebSocketAuth, audit_socket_refusal, socket_context
from api.runtime import runtime_of
from domain.errors import CBError


@strawberry.type
class RootQueries:
    @strawberry.field
    def health(self) -> str:
        return "ok"


Query = merge_types(
    "Query",
    (
        RootQueries,
        AgentQueries,
        ProviderQueries,
        ToolQueries,
        ExecutionQueries,
        AgentManagementQueries,
        DeprecationQueries,
        BudgetQueries,
    ),
)
Mutation = merge_types(
    "Mutation",
    (
        AgentMutations,
        ToolMutations,
        ExecutionMutations,
        AgentManagementMutations,
        LlmMutations,
        BudgetMutations,
    ),
)
Subscription = merge_types("Subscription", (ExecutionSubscriptions, CostSubscriptions))


class _AuditedSchema(strawberry.Schema):
    """A refusal inside a resolver (a missing scope) goes to the audit trail as it does on
    REST, and is not logged as a server error; nor is a request's own mistake (syntax,
    validation, limits: an error without a path). Anything else is logged without the
    document's text (a legacy `apiKey` may be written in it)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        request = context.get("request") if isinstance(context, dict) else None
        unexpected = []
        for error in errors:
            refusal = error.original_error
            if isinstance(refusal, CBError) and not (error.extensions or {}).get("code"):
                error.extensions = {**(error.extensions or {}), **error_extensions(refusal)}
            if not isinstance(refusal, CBError):
                if error.path is not None:
                    unexpected.append(
                        GraphQLError(error.message, path=error.path, original_error=refusal)
                    )
            elif refusal.audit and isinstance(request, WebSocket):
                audit_socket_refusal(request, refusal.audit)
            elif refusal.audit and request is not None:
                audit_refusal(request, refusal.audit)
        super().process_errors(unexpected, execution_context)


LIMITS = Limits.from_env()  # CB_GRAPHQL_MAX_TOKENS, …_DEPTH, …_ALIASES, …_FIELDS

# schema extensions (limits, validation rules, …): each area appends its own
EXTENSIONS: list[Any] = [
    lambda: QueryLimits(LIMITS),
    RequireCaller,
    DeprecationTracking,
    LegacyTypeAliases,
    DocumentCache,  # last: parses and validates each distinct operation once
]

schema = _AuditedSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    extensions=EXTENSIONS,
    types=[LlmchatCompletionInput],  # the legacy SDK's spelling (legacy_aliases.py)
)


async def _context(
    connection: HTTPConnection,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> dict[str, Any]:
    """What every resolver gets: the authenticated caller (None without credentials: then
    only `health` and introspection answer), the request and the runtime.

    For HTTP and WebSocket alike (so no `Request` parameter: FastAPI gives a WebSocket none);
    a WebSocket's caller is authenticated at its `connection_init` (`websocket.py`)."""
    if isinstance(connection, WebSocket):
        return socket_context(connection)
    request = cast(Request, connection)
    if is_platform_admin(authorization):  # for configureLlmProvider (llm.py); no tenant
        return {"principal": PLATFORM_ADMIN, "request": request, "runtime": runtime_of(request)}
    who = await caller_if_any(request, x_tenant_id, authorization)
    return {"principal": who, "request": request, "runtime": runtime_of(request)}


class _Router(WebSocketAuth, GraphQLEndpoint):
    """`/graphql`: HTTP (`endpoint.py`) and WebSocket subscriptions (`websocket.py`)."""


def graphql_router() -> GraphQLRouter:
    return _Router(schema, context_getter=_context, path="/graphql")
