"""Authentication: the admin token, and tenant API keys checked against the key directory."""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass, replace
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from api.ids import UUID_PATTERN, client_of
from api.jwt_auth import JwtSettings, TokenRejected, looks_like_jwt, verify
from api.request_metrics import note_tenant
from api.runtime import Runtime, runtime_of
from domain.audit import recorded_by
from domain.errors import AuthenticationFailed, MissingTenant, NotFound, PermissionDenied
from domain.keys import hash_key
from domain.schemas import SCOPES


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]
    source: str | None = None  # the client's address

    @property
    def actor(self) -> str:
        """Who acted: the key's id (never its secret), or `jwt:<sub>`."""
        return self.key_id if self.key_id.startswith("jwt:") else f"key:{self.key_id}"

    @property
    def by(self) -> str:
        """Who acted and from where, as a change records it."""
        return recorded_by(self.actor, self.source)

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                f"this credential lacks the {scope!r} scope",
                audit=[_entry("permission_denied", self.tenant_id, self.actor, scope=scope)],
            )


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationFailed("missing Authorization: Bearer <api key>")
    token = authorization[7:].strip()
    if not token:
        raise AuthenticationFailed("empty bearer token")
    return token


async def tenant_principal(
    request: Request,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> Principal:
    """The caller, authenticated and bound to the tenant named by `X-Tenant-ID`."""
    if not x_tenant_id:
        raise MissingTenant("the X-Tenant-ID header is required")
    who = await _key_principal(runtime_of(request), authorization, x_tenant_id)
    note_tenant(request.scope, who.tenant_id)
    return replace(who, source=client_of(request))


async def key_principal(
    request: Request,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> Principal:
    """For OpenAI-compatible routes: the key names its tenant; `X-Tenant-ID` is optional."""
    who = await _key_principal(runtime_of(request), authorization, x_tenant_id)
    note_tenant(request.scope, who.tenant_id)
    return replace(who, source=client_of(request))


def _admin_by(request: Request) -> str:
    return recorded_by("platform-admin", client_of(request))


async def admin_by(request: Request) -> str:
    """The platform admin and where it acted from, as a change records it (async: a plain
    dependency would run in a worker thread)."""
    return _admin_by(request)


async def _key_principal(
    runtime: Runtime, authorization: str | None, tenant_id: str | None
) -> Principal:
    if tenant_id is not None and not UUID_PATTERN.match(tenant_id):
        raise MissingTenant("X-Tenant-ID must be a tenant id (a lower-case UUID)")
    token = _bearer(authorization)
    if looks_like_jwt(token):
        return await _jwt_principal(token, tenant_id)
    record = await runtime.keys.lookup(hash_key(token))
    if record is None or record["revoked"]:
        reason = "revoked key" if record else "unknown key"
        raise AuthenticationFailed(
            "invalid API key",
            audit=[_entry("authentication_failed", tenant_id, None, reason=reason)],
        )
    key = f"key:{record['key_id']}"
    if record["expires_at"] is not None and record["expires_at"] < time.time():
        raise AuthenticationFailed(
            "API key expired",
            audit=[_entry("authentication_failed", record["tenant_id"], key, reason="expired")],
        )
    if tenant_id is not None and record["tenant_id"] != tenant_id:
        raise _cross_tenant(tenant_id, record["tenant_id"], key)
    return Principal(record["tenant_id"], record["key_id"], frozenset(record["scopes"]))


async def _jwt_principal(token: str, tenant_id: str | None) -> Principal:
    settings = JwtSettings.from_env()
    try:
        claims = await verify(token, settings)
    except TokenRejected as exc:
        raise AuthenticationFailed(
            f"invalid token: {exc}",
            audit=[_entry("authentication_failed", tenant_id, None, reason=f"jwt: {exc}")],
        ) from None
    owner = claims.get(settings.tenant_claim)
    if not isinstance(owner, str) or not UUID_PATTERN.match(owner):
        raise AuthenticationFailed(f"the token's {settings.tenant_claim!r} claim is no tenant id")
    subject = f"jwt:{claims.get('sub', '?')}"
    if tenant_id is not None and owner != tenant_id:
        raise _cross_tenant(tenant_id, owner, subject)
    scopes = frozenset(s for s in str(claims.get("scope", "")).split() if s in SCOPES)
    return Principal(owner, subject, scopes)


def _entry(kind: str, tenant_id: str | None, actor: str | None, **detail: Any) -> dict[str, Any]:
    return {"kind": kind, "tenant_id": tenant_id, "actor": actor, "detail": detail}


def _cross_tenant(target: str, owner: str, key: str) -> PermissionDenied:
    """A key used for another tenant: in the target's trail without the key, in the owner's
    with it and the target."""
    return PermissionDenied(
        "this API key does not belong to the tenant in X-Tenant-ID",
        audit=[
            _entry("cross_tenant_attempt", target, None),
            _entry("cross_tenant_attempt", owner, key, target_tenant=target),
        ],
    )


def _is_admin(authorization: str | None) -> bool:
    expected = admin_token()
    token = _bearer(authorization)
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


async def tenant_admin(
    tenant_id: str,
    request: Request,
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> str:
    """The platform admin, or a key of `tenant_id` with `tenant:admin`; who it was and
    from where."""
    if not UUID_PATTERN.match(tenant_id):
        raise NotFound(f"tenant {tenant_id} does not exist")
    if _is_admin(authorization):
        return _admin_by(request)
    who = await _key_principal(runtime_of(request), authorization, x_tenant_id or tenant_id)
    if who.tenant_id != tenant_id:
        raise _cross_tenant(tenant_id, who.tenant_id, who.actor)
    who.require("tenant:admin")
    return replace(who, source=client_of(request)).by


def admin_token() -> str:
    return os.environ.get("CB_ADMIN_TOKEN", "")


async def require_admin(authorization: str | None = Header(default=None)) -> None:
    """The platform admin credential (`CB_ADMIN_TOKEN`), separate from tenant keys."""
    if not _is_admin(authorization):
        raise AuthenticationFailed("invalid admin token")


Caller = Annotated[Principal, Depends(tenant_principal)]
KeyCaller = Annotated[Principal, Depends(key_principal)]
TenantAdmin = Annotated[str, Depends(tenant_admin)]
AdminBy = Annotated[str, Depends(admin_by)]
