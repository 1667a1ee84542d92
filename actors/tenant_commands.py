"""A tenant's commands other than executions, over the event store, testable without Ray.

This is the role an `eventsourcing` Application plays: load the aggregates, let them check
their invariants and change, save. `TenantActor` holds one and delegates to it; what the
commands need of the execution side (model checks, tools, the policy in force) they reach
through the `ExecutionRunner` they are given.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.legacy_imports import LegacyImports
from actors.mcp_sessions import McpConnection, check_stdio_command
from actors.secrets import SecretBox
from domain import keys
from domain.agent import Agent
from domain.config import Config, TenantDefaults
from domain.errors import Conflict, InvalidRequest, NotFound
from domain.legacy_import import imported_id
from domain.model_listing import models_listing
from domain.schemas import SCOPES
from domain.state_agents import checked_config
from domain.tenant import Tenant
from domain.tenant_limits import TenantLimits
from domain.tenant_models import TenantModelPolicy, mapping_problems
from domain.times import iso


class TenantCommands:
    """The tenant aggregate and its agents in memory, and the commands that change them."""

    def __init__(
        self, tenant_id: str, store: AsyncEventStore, box: SecretBox, runner: ExecutionRunner
    ) -> None:
        self.tenant_id = tenant_id
        self.store = store
        self.box = box
        self.runner = runner
        self.tenant: Tenant | None = None
        self.agents: dict[str, Agent] = {}
        self.imports = LegacyImports(self)

    async def load(self, config: Awaitable[None]) -> None:
        """Read the tenant and its agents while `config` (the runner's configuration) comes;
        then put its policy, keys and MCP servers to use."""
        state, _ = await asyncio.gather(self.store.run(self._read_state), config)
        self.tenant, self.agents = state
        if self.tenant is not None:
            self._adopt(self.tenant)
            self._open_mcp_servers(self.tenant)

    def _read_state(self) -> tuple[Tenant | None, dict[str, Agent]]:
        repository = self.store.app.repository
        try:
            tenant = repository.get(uuid.UUID(self.tenant_id))
        except AggregateNotFoundError:
            return None, {}
        return tenant, {a: repository.get(uuid.UUID(a)) for a in tenant.agent_ids}

    def _open_mcp_servers(self, tenant: Tenant) -> None:
        """A connection object per registered server (each connects on first use)."""
        for server_id, record in tenant.mcp_servers.items():
            server = {k: v for k, v in record.items() if k != "sealed_secrets"}
            secrets = json.loads(self.box.open(record["sealed_secrets"]))
            self.runner.tools.servers[server_id] = McpConnection(server, secrets)

    def _adopt(self, tenant: Tenant) -> None:
        """Executions follow the tenant's model policy and use its own provider keys."""
        self.runner.policy = TenantModelPolicy.of(tenant.model_mappings, tenant.model_policy)
        self.runner.payload_days = (getattr(tenant, "retention", None) or {}).get("payload_days")
        own = dict(tenant.own_provider_keys)
        for stated, sealed in tenant.legacy_agent_credentials.items():  # legacy GraphQL apiKey
            provider = legacy_provider(self.runner.config, stated)
            if provider is not None:
                own.setdefault(provider, sealed)  # a key set over REST wins
        self.runner.use_own_keys({p: self.box.open(c["ciphertext"]) for p, c in own.items()})

    def require_tenant(self) -> Tenant:
        if self.tenant is None:
            raise NotFound(f"tenant {self.tenant_id} does not exist")
        return self.tenant

    def agent(self, agent_id: str) -> Agent:
        """The agent of that id, or the one imported from the legacy agent of that id."""
        agent = self.agents.get(agent_id) or self.agents.get(
            imported_id(self.tenant_id, "agent", agent_id)
        )
        if agent is None or agent.deleted:
            raise NotFound(f"agent {agent_id} not found")
        return agent

    @asynccontextmanager
    async def _changing(self, adopt: bool = False) -> AsyncIterator[Tenant]:
        """The tenant to change, saved when the block ends; with `adopt`, executions take up
        its model policy and own provider keys as they now are."""
        tenant = self.require_tenant()
        yield tenant
        await self.store.save(tenant)
        if adopt:
            self._adopt(tenant)

    # tenant and keys

    async def create_tenant(self, name: str, by: str | None) -> dict[str, Any]:
        if self.tenant is not None:
            raise Conflict(f"tenant {self.tenant_id} already exists")
        tenant = Tenant(id=uuid.UUID(self.tenant_id), tenant_id=self.tenant_id, name=name, by=by)
        key = _new_key(tenant, list(SCOPES), None, by)
        await self.store.save(tenant)
        self.tenant = tenant
        return {"tenant": tenant.as_api(), **key}

    async def issue_api_key(
        self, scopes: list[str], expires_at: float | None, by: str | None
    ) -> dict[str, Any]:
        async with self._changing() as tenant:
            return _new_key(tenant, scopes, expires_at, by)

    async def revoke_api_key(self, key_id: str, by: str) -> dict[str, Any]:
        """Revoke a key: every replica refuses it once its key cache expires (≤ 5 s)."""
        async with self._changing() as tenant:
            tenant.revoke_api_key(key_id, by)
        return {"id": key_id, "revoked": True}

    async def set_limits(self, own: dict[str, Any], by: str) -> TenantLimits:
        """The tenant's own limits over the configured defaults; the effective limits."""
        limits = effective_limits(self.runner.config.tenant_defaults, own)  # validates the mix
        async with self._changing() as tenant:
            tenant.set_limits(own, by)
        return limits

    def describe(self) -> dict[str, Any]:
        return self.require_tenant().as_api()

    async def set_retention(self, retention: dict[str, Any] | None, by: str) -> dict[str, Any]:
        """Keep payloads (and metrics) for a while only (`domain.retention.Retention`, checked
        by the API), or everything (None); executions started from now on follow it."""
        async with self._changing(adopt=True) as tenant:
            tenant.set_retention(retention, by)
        return self.retention()

    def retention(self) -> dict[str, Any]:
        return {"retention": self.require_tenant().retention}

    async def set_judge(self, judge: dict[str, Any] | None, by: str) -> dict[str, Any]:
        """The tenant's default judge (`domain.judging.JudgeSpec`, checked by the API; its
        model must exist), or none."""
        if judge is not None:
            await self.runner.check_model(judge["model"])
        async with self._changing() as tenant:
            tenant.set_judge(judge, by)
        return self.judge()

    def judge(self) -> dict[str, Any]:
        return {"judge": getattr(self.require_tenant(), "judge", None)}

    # models and own provider keys

    async def set_model_mapping(
        self, name: str, mapping: dict[str, Any], by: str
    ) -> dict[str, Any]:
        """Map a virtual name to this tenant's own candidates (over the platform's)."""
        self.require_tenant()
        await self.runner.routing.fresh()
        problems = mapping_problems(name, mapping, self.runner.config)
        if problems:
            raise InvalidRequest(problems[0], details={"problems": problems})
        async with self._changing(adopt=True) as tenant:
            tenant.set_model_mapping(name, mapping, by)
        return {"name": name, **mapping}

    def list_model_mappings(self) -> dict[str, Any]:
        mappings = self.require_tenant().model_mappings
        return {"mappings": [{"name": n, **m} for n, m in sorted(mappings.items())]}

    async def remove_model_mapping(self, name: str, by: str) -> dict[str, Any]:
        async with self._changing(adopt=True) as tenant:
            tenant.remove_model_mapping(name, by)
        return {"name": name, "removed": True}

    async def set_model_policy(self, policy: dict[str, Any], by: str) -> dict[str, Any]:
        """Allow-list, parameter defaults and caps for every execution of this tenant."""
        self.require_tenant()
        await self.runner.routing.fresh()
        unknown = [
            f"allowed_models[{i}]: unknown model {m!r}"
            for i, m in enumerate(policy.get("allowed_models") or [])
            if m not in self.runner.config.models
        ]
        if unknown:
            raise InvalidRequest(unknown[0], details={"problems": unknown})
        async with self._changing(adopt=True) as tenant:
            tenant.set_model_policy(policy, by)
        return policy

    def get_model_policy(self) -> dict[str, Any]:
        return self.require_tenant().model_policy

    async def models_listing(self) -> dict[str, Any]:
        """Every model this tenant can name, and what each virtual name resolves to now."""
        self.require_tenant()
        runner = self.runner
        await runner.routing.fresh()
        return models_listing(
            runner.config, runner.policy, runner.providers, runner.routing.open,
            runner.routing.stats,
        )  # fmt: skip

    async def set_own_provider_key(self, provider: str, api_key: str, by: str) -> dict[str, Any]:
        """Keep the tenant's own key for a provider, encrypted; used only for its calls."""
        self.require_tenant()
        spec = self.runner.config.providers.get(provider)
        if spec is None:
            raise NotFound(f"provider {provider!r} is not configured on this platform")
        if not spec.requires_api_key:
            raise InvalidRequest(f"provider {provider!r} takes no key")
        hint = api_key[:3] + "…" + api_key[-2:] if len(api_key) > 12 else "…"
        async with self._changing(adopt=True) as tenant:
            tenant.set_own_provider_key(provider, self.box.seal(api_key), hint, by)
        return {"provider": provider, "hint": hint}

    def list_own_provider_keys(self) -> dict[str, Any]:
        own = self.require_tenant().own_provider_keys
        return {"credentials": [{"provider": p, "hint": c["hint"]} for p, c in sorted(own.items())]}

    async def remove_own_provider_key(self, provider: str, by: str) -> dict[str, Any]:
        async with self._changing(adopt=True) as tenant:
            tenant.remove_own_provider_key(provider, by)
        return {"provider": provider, "removed": True}

    # tools and MCP servers

    async def register_mcp_server(
        self, server: dict[str, Any], secrets: dict[str, dict[str, str]], by: str
    ) -> dict[str, Any]:
        """Register an MCP server, connect to it and list its tools (a failure shows in its
        health; the registration stands)."""
        if server["transport"] == "stdio":
            check_stdio_command(server["command"])
        server = {**server, "id": uuid.uuid4().hex}
        async with self._changing() as tenant:
            tenant.register_mcp_server(server, self.box.seal(json.dumps(secrets)), by)
        connection = McpConnection(server, secrets)
        self.runner.tools.servers[server["id"]] = connection
        await self.runner.tools.open(connection)
        return connection.as_api()

    def list_mcp_servers(self) -> dict[str, Any]:
        self.require_tenant()
        return {"servers": [s.as_api() for s in self.runner.tools.servers.values()]}

    async def remove_mcp_server(self, server_id: str, by: str) -> dict[str, Any]:
        async with self._changing() as tenant:
            tenant.remove_mcp_server(server_id, by)
        connection = self.runner.tools.servers.pop(server_id, None)
        if connection is not None:
            await connection.close()
        return {"id": server_id, "removed": True}

    async def refresh_mcp_server(self, server_id: str) -> dict[str, Any]:
        connection = self.runner.tools.servers.get(server_id)
        if connection is None:
            raise NotFound(f"MCP server {server_id} not found")
        try:
            await connection.refresh(self.runner.tools.taken_by_others(connection))
        except Exception:  # shown in the server's health
            pass
        return connection.as_api()

    async def list_tools(self) -> dict[str, Any]:
        """Built-in tools and the tools of this tenant's MCP servers, with their health."""
        self.require_tenant()
        tools = self.runner.tools
        await tools.reopen_failed()
        health = {s.name: s.as_api()["health"] for s in tools.servers.values()}
        return {
            "tools": [
                {**spec.as_api(), "health": health.get(spec.source, {"status": "ready"})}
                for spec in tools.specs().values()
            ]
        }

    # agents

    async def check_definition(self, definition: dict[str, Any]) -> None:
        """An agent definition's tools exist and its model can serve them (else a CBError)."""
        await self.runner.tools.resolve(definition.get("tools") or [])
        await self.runner.check_model(definition["model"], definition.get("tools"))
        if definition.get("judge"):
            await self.runner.check_model(definition["judge"]["model"])

    async def _checked_agent(
        self, definition: dict[str, Any], by: str | None, agent_id: str | None = None
    ) -> Agent:
        """A new agent whose tools exist and whose model can serve them (not yet saved)."""
        await self.check_definition(definition)
        new_id = uuid.UUID(agent_id) if agent_id else uuid.uuid4()
        return Agent(id=new_id, tenant_id=self.tenant_id, definition=definition, by=by)

    async def create_agent(
        self,
        definition: dict[str, Any],
        credential: dict[str, str] | None,
        by: str | None,
        agent_id: str | None = None,
    ) -> dict[str, Any]:
        """Create an agent (with `agent_id` if given); a legacy agent credential given with it
        is kept encrypted."""
        tenant = self.require_tenant()
        agent = await self._checked_agent(definition, by, agent_id)
        key, stated = (credential or {}).get("api_key"), (credential or {}).get("provider_type")
        providers = self.runner.config.providers
        provider = legacy_provider(self.runner.config, stated)
        if key and stated not in providers and all(p.type != stated for p in providers.values()):
            raise InvalidRequest(
                f"providerType {stated!r} names no provider of this platform "
                f"({', '.join(sorted(providers))}); its apiKey could not be used",
                details={"param": "llmProvider.providerType"},
            )
        tenant.add_agent(str(agent.id))
        if key and provider is not None:  # the tenant's key for that provider from now on
            tenant.store_legacy_agent_credential(provider, self.box.seal(key), key[:3] + "…", by)
        await self.store.save(tenant, agent)
        self.agents[str(agent.id)] = agent
        if key and provider is not None:
            self._adopt(tenant)
        return agent.as_api()

    async def install_agents(
        self, definitions: list[dict[str, Any]], by: str | None
    ) -> dict[str, Any]:
        """Create each agent unless one of that name exists (so installing twice is a no-op)."""
        tenant = self.require_tenant()
        by_name = {a.definition["name"]: a for a in self.agents.values() if not a.deleted}
        created, installed = [], []
        for definition in definitions:
            agent = by_name.get(definition["name"])
            if agent is None:
                agent = await self._checked_agent(definition, by)
                tenant.add_agent(str(agent.id))
                created.append(agent)
            installed.append(agent)
        if created:
            await self.store.save(tenant, *created)
            self.agents.update({str(a.id): a for a in created})
        return {"agents": [a.as_api() for a in installed], "created": len(created)}

    def list_agents(self) -> list[dict[str, Any]]:
        self.require_tenant()
        return [a.as_api() for a in self.agents.values() if not a.deleted]

    def get_agent(self, agent_id: str) -> dict[str, Any]:
        return self.agent(agent_id).as_api()

    async def update_agent(
        self, agent_id: str, changes: dict[str, Any], by: str | None
    ) -> dict[str, Any]:
        agent = self.agent(agent_id)
        if "model" in changes or "tools" in changes:
            await self.check_definition({**agent.definition, **changes})
        if changes:
            agent.update(changes, by)
            await self.store.save(agent)
        return agent.as_api()

    async def delete_agent(self, agent_id: str, by: str | None) -> dict[str, Any]:
        agent, tenant = self.agent(agent_id), self.require_tenant()
        agent_id = str(agent.id)  # a legacy id names the agent imported from it
        agent.delete(by)
        tenant.remove_agent(agent_id)
        await self.store.save(tenant, agent)
        self.agents.pop(agent_id, None)
        return {"id": agent_id, "deleted": True}

    # state agent configurations (legacy GraphQL)

    async def create_state_agent_config(
        self, config: dict[str, Any], by: str | None
    ) -> dict[str, Any]:
        """Bind an existing agent of this tenant to a workflow state."""
        config = checked_config(config)
        self.agent(config["agent_id"])
        config = {**config, "id": uuid.uuid4().hex, "created_at": iso(time.time())}
        async with self._changing() as tenant:
            tenant.configure_state_agent(config, by)
        return config

    def state_agent_configs(self, state_id: str | None = None) -> list[dict[str, Any]]:
        """The tenant's state agent configurations (of one state), oldest first."""
        configs = self.require_tenant().state_agent_configs.values()
        return [c for c in configs if state_id is None or c["state_id"] == state_id]


def legacy_provider(config: Config, stated: str | None) -> str | None:
    """The provider a legacy `providerType` names (a provider's name, else the one provider
    of that type), if it takes a key; None otherwise."""
    if not stated:
        return None
    spec = config.providers.get(stated)
    if spec is None:
        typed = [n for n, s in config.providers.items() if s.type == stated]
        stated, spec = (typed[0], config.providers[typed[0]]) if len(typed) == 1 else (stated, None)
    return stated if spec is not None and spec.requires_api_key else None


def effective_limits(defaults: TenantDefaults, own: dict[str, Any]) -> TenantLimits:
    """The tenant's effective limits: its own over the configured defaults."""
    base = defaults.model_dump(exclude={"idle_evict_s"})
    return TenantLimits.model_validate({**base, **own})


def _new_key(
    tenant: Tenant, scopes: list[str], expires_at: float | None, by: str | None
) -> dict[str, Any]:
    secret = keys.new_api_key()
    key_id = uuid.uuid4().hex
    tenant.issue_api_key(
        key_id, keys.hash_key(secret), keys.key_hint(secret), scopes, expires_at, by
    )
    return {"id": key_id, "api_key": secret, "scopes": scopes, "expires_at": expires_at}
