"""What a resolver reads from its context: the caller, the runtime, the caller's tenant."""

from __future__ import annotations

from strawberry.types import Info

from api.auth import Principal
from api.clients import TenantClient
from api.runtime import Runtime


def who(info: Info) -> Principal:
    """The authenticated caller."""
    return info.context["principal"]


def runtime(info: Info) -> Runtime:
    return info.context["runtime"]


def tenant(info: Info, caller: Principal) -> TenantClient:
    """The client of the caller's tenant actor."""
    return runtime(info).tenant(caller.tenant_id)
