"""Authentication: the admin token, and tenant API keys checked against the key directory."""

from __future__ import annotations

import hmac
import os
import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from api import runtime
from domain.errors import AuthenticationFailed, MissingTenant, PermissionDenied
from domain.keys import hash_key

TENANT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
CACHE_TTL_S = 5.0
NEGATIVE_TTL_S = 1.0

_cache: dict[str, tuple[float, dict | None]] = {}


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(f"this credential lacks the {scope!r} scope")


def _bearer(authorization: str | None) -> str:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise AuthenticationFailed("missing Authorization: Bearer <api key>")
    token = authorization[7:].strip()
    if not token:
        raise AuthenticationFailed("empty bearer token")
    return token


async def _lookup(key_hash: str) -> dict | None:
    now = time.monotonic()
    hit = _cache.get(key_hash)
    if hit is not None and hit[0] > now:
        return hit[1]
    record = await runtime.query("lookup_key", key_hash)
    _cache[key_hash] = (now + (CACHE_TTL_S if record else NEGATIVE_TTL_S), record)
    if len(_cache) > 100_000:
        _cache.clear()
    return record


async def tenant_principal(
    x_tenant_id: str | None = Header(default=None),
    authorization: str | None = Header(default=None),
) -> Principal:
    """The caller, authenticated and bound to the tenant named by `X-Tenant-ID`."""
    if not x_tenant_id:
        raise MissingTenant("the X-Tenant-ID header is required")
    if not TENANT_ID.match(x_tenant_id):
        raise MissingTenant("X-Tenant-ID must be a tenant id (a lower-case UUID)")
    record = await _lookup(hash_key(_bearer(authorization)))
    if record is None or record["revoked"]:
        raise AuthenticationFailed("invalid API key")
    if record["expires_at"] is not None and record["expires_at"] < time.time():
        raise AuthenticationFailed("API key expired")
    if record["tenant_id"] != x_tenant_id:
        raise PermissionDenied("this API key does not belong to the tenant in X-Tenant-ID")
    return Principal(x_tenant_id, record["key_id"], frozenset(record["scopes"]))


def admin_token() -> str:
    return os.environ.get("CB_ADMIN_TOKEN", "")


async def require_admin(authorization: str | None = Header(default=None)) -> None:
    """The platform admin credential (`CB_ADMIN_TOKEN`), separate from tenant keys."""
    expected = admin_token()
    token = _bearer(authorization)
    if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
        raise AuthenticationFailed("invalid admin token")


Caller = Annotated[Principal, Depends(tenant_principal)]
