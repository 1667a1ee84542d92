"""TenantCommands without Ray: commands load, check, change and save through the store."""

from __future__ import annotations

import uuid

import pytest

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.secrets import SecretBox
from actors.settings import new_key
from actors.tenant_commands import TenantCommands
from domain.config import Config
from domain.errors import Conflict, InvalidRequest, ModelNotFound, NotFound, UnknownTool
from tests.unit.fakes import FakePeers

pytestmark = pytest.mark.usefixtures("openai_key")


async def _commands(store: AsyncEventStore, box: SecretBox, tenant_id: str) -> TenantCommands:
    empty = Config(providers={}, models={})
    runner = ExecutionRunner(empty, store, tenant_id, FakePeers().peers())
    commands = TenantCommands(tenant_id, store, box, runner)
    await commands.load(runner.routing.refresh())  # as the actor: config while reading
    return commands


async def test_a_tenant_is_created_once_and_reloads_with_its_agents(store) -> None:
    box, tenant_id = SecretBox(key=new_key()), str(uuid.uuid4())
    commands = await _commands(store, box, tenant_id)
    with pytest.raises(NotFound):
        commands.require_tenant()
    created = await commands.create_tenant("Acme", "admin")
    assert created["tenant"]["name"] == "Acme" and created["api_key"].startswith("cbk_")
    with pytest.raises(Conflict):
        await commands.create_tenant("Acme again", "admin")
    agent = await commands.create_agent({"name": "Helper", "model": "cb:smart-chat"}, None, "me")

    again = await _commands(store, box, tenant_id)  # a new incarnation reads the store
    assert again.describe()["name"] == "Acme"
    assert [a["id"] for a in again.list_agents()] == [agent["id"]]


async def test_an_agent_whose_model_or_tools_do_not_exist_is_refused_and_not_saved(
    store,
) -> None:
    commands = await _commands(store, SecretBox(key=new_key()), str(uuid.uuid4()))
    await commands.create_tenant("Acme", None)
    with pytest.raises(ModelNotFound):
        await commands.create_agent({"name": "A", "model": "cb:nope"}, None, None)
    with pytest.raises(UnknownTool):
        await commands.create_agent(
            {"name": "B", "model": "cb:smart-chat", "tools": ["no_such_tool"]}, None, None
        )
    assert commands.list_agents() == [] and commands.require_tenant().agent_ids == []


async def test_own_provider_keys_are_sealed_in_the_store_and_used_for_calls(store) -> None:
    box, tenant_id = SecretBox(key=new_key()), str(uuid.uuid4())
    commands = await _commands(store, box, tenant_id)
    await commands.create_tenant("Acme", None)
    shown = await commands.set_own_provider_key("openai", "sk-tenant-own-key-123", "me")
    assert shown == {"provider": "openai", "hint": "sk-…23"}
    assert commands.runner.caller.own_keys == {"openai": "sk-tenant-own-key-123"}
    sealed = commands.require_tenant().own_provider_keys["openai"]["ciphertext"]
    assert "sk-tenant-own-key-123" not in sealed and box.open(sealed) == "sk-tenant-own-key-123"
    with pytest.raises(InvalidRequest):
        await commands.set_own_provider_key("local", "k" * 20, "me")  # takes no key
    await commands.remove_own_provider_key("openai", "me")
    assert commands.runner.caller.own_keys == {}
    with pytest.raises(NotFound):
        await commands.remove_own_provider_key("openai", "me")


async def test_a_new_incarnation_uses_a_legacy_agent_key_of_a_provider_its_config_names(
    store,
) -> None:
    """The store is read while the configuration comes; the tenant's keys are put to use
    only once it has (a legacy credential names a provider type only the config resolves)."""
    box, tenant_id = SecretBox(key=new_key()), str(uuid.uuid4())
    commands = await _commands(store, box, tenant_id)
    await commands.create_tenant("Acme", None)
    credential = {"api_key": "sk-legacy-agent-key-456", "provider_type": "openai"}
    await commands.create_agent({"name": "Old", "model": "cb:smart-chat"}, credential, "me")

    again = await _commands(store, box, tenant_id)
    assert again.runner.config.providers  # came during the load, after the empty start
    assert again.runner.caller.own_keys == {"openai": "sk-legacy-agent-key-456"}


async def test_revoking_a_key_twice_is_not_found_and_saves_nothing(store) -> None:
    commands = await _commands(store, SecretBox(key=new_key()), str(uuid.uuid4()))
    created = await commands.create_tenant("Acme", None)
    key = await commands.issue_api_key(["agents:read"], None, "me")
    assert await commands.revoke_api_key(key["id"], "me") == {"id": key["id"], "revoked": True}
    with pytest.raises(NotFound):
        await commands.revoke_api_key(key["id"], "me")
    tenant = commands.require_tenant()
    assert tenant.api_keys[created["id"]]["revoked"] is False
    assert tenant.version == 4  # created with its key, issued, revoked; the refusal: nothing


async def test_a_model_policy_naming_an_unknown_model_is_refused(store) -> None:
    commands = await _commands(store, SecretBox(key=new_key()), str(uuid.uuid4()))
    await commands.create_tenant("Acme", None)
    with pytest.raises(InvalidRequest) as refused:
        await commands.set_model_policy({"allowed_models": ["gpt-4o", "gpt-99"]}, "me")
    assert refused.value.details == {"problems": ["allowed_models[1]: unknown model 'gpt-99'"]}
    await commands.set_model_policy({"allowed_models": ["gpt-4o"]}, "me")
    assert commands.runner.policy.allowed_models == {"gpt-4o"}
