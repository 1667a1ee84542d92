"""The GraphQL schema, composed from one module per area, and its FastAPI router.

Every resolver is tenant-scoped. An area adds its `…Queries`/`…Mutations` class to the
lists below."""

from __future__ import annotations

from typing import Any

import strawberry
from fastapi import Request
from graphql import GraphQLError
from strawberry.fastapi import GraphQLRouter
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from api.auth import Caller
from api.errors import audit_refusal
from api.graphql.agents import AgentMutations, AgentQueries
from api.graphql.providers import ProviderQueries
from api.graphql.tools import ToolMutations, ToolQueries
from api.runtime import Rt
from domain.errors import CBError


@strawberry.type
class RootQueries:
    @strawberry.field
    def health(self) -> str:
        return "ok"


Query = merge_types("Query", (RootQueries, AgentQueries, ProviderQueries, ToolQueries))
Mutation = merge_types("Mutation", (AgentMutations, ToolMutations))


class _AuditedSchema(strawberry.Schema):
    """A refusal inside a resolver (a missing scope) goes to the audit trail as it does on
    REST, and is not logged as a server error; anything else is logged as before."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        context = execution_context.context if execution_context else None
        request = context.get("request") if isinstance(context, dict) else None
        unexpected = []
        for error in errors:
            refusal = error.original_error
            if not isinstance(refusal, CBError):
                unexpected.append(error)
            elif refusal.audit and request is not None:
                audit_refusal(request, refusal.audit)
        super().process_errors(unexpected, execution_context)


# schema extensions (limits, validation rules, …): each area appends its own
EXTENSIONS: list[Any] = []

schema = _AuditedSchema(query=Query, mutation=Mutation, extensions=EXTENSIONS)


async def _context(who: Caller, request: Request, runtime: Rt) -> dict[str, Any]:
    """What every resolver gets: the authenticated caller, the request and the runtime."""
    return {"principal": who, "request": request, "runtime": runtime}


def graphql_router() -> GraphQLRouter:
    return GraphQLRouter(schema, context_getter=_context, path="/graphql")
