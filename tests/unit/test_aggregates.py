"""Tenant and Agent keep their own invariants: a refused command raises and records nothing."""

from __future__ import annotations

import uuid

import pytest

from domain.agent import Agent
from domain.errors import Conflict, NotFound
from domain.tenant import Tenant


def _tenant() -> Tenant:
    tenant_id = uuid.uuid4()
    tenant = Tenant(id=tenant_id, tenant_id=str(tenant_id), name="Acme")
    tenant.collect_events()
    return tenant


def test_revoking_an_unknown_or_revoked_key_is_not_found() -> None:
    tenant = _tenant()
    with pytest.raises(NotFound):
        tenant.revoke_api_key("nope", "admin")
    tenant.issue_api_key("k1", "hash", "cbk_…", ["agents:read"], None)
    tenant.revoke_api_key("k1", "admin")
    with pytest.raises(NotFound):
        tenant.revoke_api_key("k1", "admin")
    assert [type(e).__name__ for e in tenant.collect_events()] == ["ApiKeyIssued", "ApiKeyRevoked"]


def test_removing_what_the_tenant_does_not_have_is_not_found() -> None:
    tenant = _tenant()
    for remove in (
        lambda: tenant.remove_own_provider_key("openai", "admin"),
        lambda: tenant.remove_model_mapping("cb:x", "admin"),
        lambda: tenant.remove_mcp_server("s1", "admin"),
        lambda: tenant.remove_agent(str(uuid.uuid4())),
    ):
        with pytest.raises(NotFound):
            remove()
    assert tenant.collect_events() == []


def test_two_mcp_servers_cannot_share_a_name() -> None:
    tenant = _tenant()
    tenant.register_mcp_server({"id": "s1", "name": "files"}, "sealed", "admin")
    with pytest.raises(Conflict):
        tenant.register_mcp_server({"id": "s2", "name": "files"}, "sealed", "admin")
    assert list(tenant.mcp_servers) == ["s1"]


def test_a_deleted_agent_takes_no_more_commands() -> None:
    agent = Agent(id=uuid.uuid4(), tenant_id="t", definition={"name": "A", "model": "m"})
    agent.delete("admin")
    with pytest.raises(NotFound):
        agent.update({"name": "B"})
    with pytest.raises(NotFound):
        agent.delete("admin")
    assert agent.definition["name"] == "A"


def test_the_api_shows_a_tenant_and_an_agent_by_their_fields() -> None:
    tenant = _tenant()
    assert tenant.as_api()["name"] == "Acme" and tenant.as_api()["id"] == tenant.tenant_id
    agent = Agent(id=uuid.uuid4(), tenant_id="t", definition={"name": "A", "model": "m"})
    assert agent.as_api()["version"] == 1 and agent.as_api()["model"] == "m"
