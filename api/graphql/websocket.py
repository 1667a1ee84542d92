"""GraphQL over WebSocket on `/graphql`: both protocols strawberry speaks
(`graphql-transport-ws`, and the legacy `graphql-ws` of the legacy TypeScript SDK), with the
caller authenticated once per connection, at its `connection_init`.

The credentials are the HTTP ones, `Authorization: Bearer <api key or JWT>` and optionally
`X-Tenant-ID` (the key names its tenant; when given, the two must agree), taken from the
`connection_init` payload (for browsers, which cannot set headers on a WebSocket) or else
from the upgrade request's headers. A refused credential closes the socket with 4401 (no
valid credential) or 4403 (not allowed), the reason saying why, after the legacy protocol's
`connection_error`; the refusal goes to the audit trail as on HTTP.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any, cast

from fastapi import Request
from starlette.websockets import WebSocket
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.fastapi import GraphQLRouter
from strawberry.types.unset import UNSET, UnsetType

from api.auth import key_principal
from api.ids import UUID_PATTERN, client_of
from api.runtime import runtime_of
from domain.errors import CBError, PermissionDenied

MAX_SUBSCRIPTIONS = 16  # operations at once on one connection; more are refused
SOCKET_OPTIONS: dict[str, Any] = {
    "max_subscriptions_per_connection": MAX_SUBSCRIPTIONS,
    "connection_init_wait_timeout": timedelta(seconds=30),  # then 4408
    "keep_alive": True,  # the legacy protocol's `ka` messages, so idle proxies keep it open
    "keep_alive_interval": 15.0,
    # credentials are never ambient (no cookies): a page on any origin must hold a key
    "allowed_origins": ("*",),
}
REFUSAL = "cb.socket_refusal"  # scope key: the close code and reason of a refused connection
MAX_REASON_BYTES = 123  # what a WebSocket close frame holds


def socket_context(websocket: WebSocket) -> dict[str, Any]:
    """The resolvers' context on a WebSocket: no caller until `connection_init` names one."""
    return {"principal": None, "request": websocket, "runtime": runtime_of(websocket)}


def credentials(
    params: Mapping[str, Any] | None, headers: Mapping[str, str]
) -> tuple[str | None, str | None]:
    """The tenant id and the Authorization value: each from the `connection_init` payload
    (its keys in any case, or under `headers`) if there, else from the upgrade's headers.
    A bare `apiKey`/`token` in the payload counts as a bearer token."""
    given: dict[str, str] = {}
    if isinstance(params, Mapping):
        nested = params.get("headers")
        for source in (params, nested if isinstance(nested, Mapping) else {}):
            for key, value in source.items():
                if isinstance(key, str) and isinstance(value, str):
                    given.setdefault(key.lower().replace("_", "-"), value)
    tenant = given.get("x-tenant-id") or given.get("tenantid") or given.get("tenant-id")
    authorization = given.get("authorization")
    token = given.get("apikey") or given.get("api-key") or given.get("token")
    if authorization is None and token:
        authorization = f"Bearer {token}"
    return tenant or headers.get("x-tenant-id"), authorization or headers.get("authorization")


def audit_socket_refusal(websocket: WebSocket, entries: list[dict[str, Any]]) -> None:
    """Queue a refusal's audit entries (those naming a well-formed tenant id), as
    `api.errors.audit_refusal` does for an HTTP request."""
    entries = [e for e in entries if e.get("tenant_id") and UUID_PATTERN.match(e["tenant_id"])]
    runtime_of(websocket).security_log.note(
        entries, client_of(websocket), "GET", websocket.url.path
    )


class _SocketAdapter(ASGIWebSocketAdapter):
    """Closes a connection refused at `connection_init` with our code and reason (strawberry
    closes it with 4403 `Forbidden`, the legacy protocol's handler with 1011)."""

    async def close(self, code: int, reason: str) -> None:
        refusal = self.ws.scope.get(REFUSAL)
        if refusal is not None and code in (1011, 4403):
            code, reason = refusal
        await super().close(code, reason)


class WebSocketAuth(GraphQLRouter):
    """A GraphQL router whose WebSocket connections authenticate at `connection_init`, with
    `SOCKET_OPTIONS` unless told otherwise; put it first among a router's bases."""

    websocket_adapter_class = _SocketAdapter  # type: ignore[assignment]

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **{**SOCKET_OPTIONS, **options})

    async def on_ws_connect(self, context: dict[str, Any]) -> UnsetType | dict[str, object] | None:
        """Authenticate the connection's caller, or refuse the connection."""
        websocket: WebSocket = context["request"]
        tenant_id, authorization = credentials(context.get("connection_params"), websocket.headers)
        # the connection stands in for the request (its app's runtime, the client's address)
        request = cast(Request, websocket)
        try:
            context["principal"] = await key_principal(request, tenant_id, authorization)
        except CBError as err:
            audit_socket_refusal(websocket, err.audit or _failed(tenant_id))
            code = 4403 if isinstance(err, PermissionDenied) else 4401
            reason = f"{'Forbidden' if code == 4403 else 'Unauthorized'}: {err.message}"
            websocket.scope[REFUSAL] = (code, _clip(reason))
            raise ConnectionRejectionError(
                {"message": err.message, "extensions": {"code": err.type}}
            ) from None
        return UNSET


def _failed(tenant_id: str | None) -> list[dict[str, Any]]:
    """The audit entry of a missing or malformed credential (as HTTP records it)."""
    return [{"kind": "authentication_failed", "tenant_id": tenant_id, "actor": None,
             "detail": {"reason": "missing or invalid credential"}}]  # fmt: skip


def _clip(reason: str) -> str:
    """The reason cut to what a close frame holds."""
    return reason.encode()[:MAX_REASON_BYTES].decode(errors="ignore")
