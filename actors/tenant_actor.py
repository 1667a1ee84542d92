"""TenantActor: one tenant's isolated runtime — its agents, limits and executions."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import ray
from eventsourcing.application import AggregateNotFoundError

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.live_stream import LiveStream
from actors.mcp_sessions import McpConnection, check_stdio_command
from actors.replies import replies
from actors.secrets import SecretBox
from actors.settings import Settings
from actors.stream_channel import StreamChannel
from domain import keys, stream_log
from domain.agent import Agent
from domain.catalog import Catalog, TenantDefaults
from domain.errors import Conflict, InvalidRequest, NotFound, ResumeUnavailable
from domain.execution import Execution
from domain.model_listing import models_listing
from domain.schemas import SCOPES
from domain.tenant import Tenant
from domain.tenant_limits import (
    RATE_LIMIT_HEADERS,
    LimitGate,
    TenantLimits,
    estimated_tokens,
)
from domain.tenant_models import TenantModelPolicy, mapping_problems

log = logging.getLogger(__name__)


@ray.remote
class TenantActor:
    """Owns the tenant aggregate and its agents in memory; rebuilt from the store on start."""

    def __init__(self, settings: Settings, tenant_id: str) -> None:
        self.settings = settings
        self.tenant_id = tenant_id
        self.store = AsyncEventStore(settings)
        # empty until the first _load asks the config actor (never the file as it lies: an
        # operator may be editing it)
        empty = Catalog(providers={}, models={})
        self.runner = ExecutionRunner(settings, empty, self.store, tenant_id)
        defaults = TenantDefaults()
        self.gate = LimitGate(_limits(defaults, {}), time.monotonic())
        self.idle_evict_s = settings.tenant_idle_evict_s or defaults.idle_evict_s
        self.live: dict[str, LiveStream] = {}
        self.channel = StreamChannel()
        self.last_used = time.monotonic()
        self.tenant: Tenant | None = None
        self.agents: dict[str, Agent] = {}
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._reaper: asyncio.Task[None] | None = None

    # -- state -------------------------------------------------------------------------------

    async def _load(self) -> None:
        self.last_used = time.monotonic()
        if self._reaper is None:
            self._reaper = asyncio.get_running_loop().create_task(self._evict_when_idle())
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            await self.runner.view.refresh()
            defaults = self.runner.catalog.tenant_defaults
            self.idle_evict_s = self.settings.tenant_idle_evict_s or defaults.idle_evict_s
            self.tenant, self.agents = await self.store.run(self._read_state)
            own = self.tenant.limits if self.tenant is not None else {}
            self.gate = LimitGate(_limits(defaults, own), time.monotonic())
            if self.tenant is not None:
                self._adopt_policy(self.tenant)
                self._open_mcp_servers(self.tenant)
                await self.runner.fail_interrupted()
            self._loaded = True

    def _open_mcp_servers(self, tenant: Tenant) -> None:
        """A connection object per registered server (each connects on first use)."""
        box = SecretBox(self.settings)
        for server_id, record in tenant.mcp_servers.items():
            server = {k: v for k, v in record.items() if k != "sealed_secrets"}
            secrets = json.loads(box.open(record["sealed_secrets"]))
            self.runner.tools.servers[server_id] = McpConnection(server, secrets)

    def _adopt_policy(self, tenant: Tenant) -> None:
        self.runner.policy = TenantModelPolicy.of(tenant.model_mappings, tenant.model_policy)
        box = SecretBox(self.settings) if tenant.own_provider_keys else None
        self.runner.use_own_keys(
            {p: box.open(c["ciphertext"]) for p, c in tenant.own_provider_keys.items()}
            if box
            else {}
        )

    def _read_state(self) -> tuple[Tenant | None, dict[str, Agent]]:
        try:
            tenant = self.store.app.repository.get(uuid.UUID(self.tenant_id))
        except AggregateNotFoundError:
            return None, {}
        agents = {a: self.store.app.repository.get(uuid.UUID(a)) for a in tenant.agent_ids}
        return tenant, agents

    def _require_tenant(self) -> Tenant:
        if self.tenant is None:
            raise NotFound(f"tenant {self.tenant_id} does not exist")
        return self.tenant

    def _agent(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None or agent.deleted:
            raise NotFound(f"agent {agent_id} not found")
        return agent

    def _idle(self) -> bool:
        return self.gate.running == 0 and time.monotonic() - self.last_used > self.idle_evict_s

    async def _evict_when_idle(self) -> None:
        while True:
            await asyncio.sleep(min(self.idle_evict_s / 2, 30.0))
            if self._idle():
                # exit through a method call: Ray ends an async actor only from inside one
                ray.get_runtime_context().current_actor.retire.remote()
                return

    async def retire(self) -> bool:
        """Stop this actor if it is still idle; calls queued behind this one are retried."""
        if not self._idle():
            self._reaper = asyncio.get_running_loop().create_task(self._evict_when_idle())
            return False
        log.info("tenant %s idle for %.0f s, evicting its actor", self.tenant_id, self.idle_evict_s)
        return await self.stop()

    async def stop(self) -> bool:
        """Stop now (the tenant is being erased): end its stdio servers, close the store."""
        for live in list(self.live.values()):
            if live.task is not None:
                live.task.cancel()
        await self.runner.tools.close()  # ends the tenant's stdio server processes
        self.store.close()
        self.channel.close()
        ray.actor.exit_actor()
        return True

    # -- tenant and keys ---------------------------------------------------------------------

    @replies
    async def create_tenant(self, name: str, by: str | None = None) -> dict[str, Any]:
        await self._load()
        if self.tenant is not None:
            raise Conflict(f"tenant {self.tenant_id} already exists")
        tenant = Tenant(id=uuid.UUID(self.tenant_id), tenant_id=self.tenant_id, name=name, by=by)
        key = self._new_key(tenant, list(SCOPES), None, by)
        await self.store.save(tenant)
        self.tenant = tenant
        return {"tenant": _tenant_view(tenant), **key}

    @replies
    async def issue_api_key(
        self, scopes: list[str], expires_at: float | None, by: str | None = None
    ) -> dict[str, Any]:
        await self._load()
        tenant = self._require_tenant()
        key = self._new_key(tenant, scopes, expires_at, by)
        await self.store.save(tenant)
        return key

    @staticmethod
    def _new_key(
        tenant: Tenant, scopes: list[str], expires_at: float | None, by: str | None
    ) -> dict[str, Any]:
        secret = keys.new_api_key()
        key_id = uuid.uuid4().hex
        tenant.issue_api_key(
            key_id, keys.hash_key(secret), keys.key_hint(secret), scopes, expires_at, by
        )
        return {"id": key_id, "api_key": secret, "scopes": scopes, "expires_at": expires_at}

    @replies
    async def revoke_api_key(self, key_id: str, by: str) -> dict[str, Any]:
        """Revoke a key: every replica refuses it once its key cache expires (≤ 5 s)."""
        await self._load()
        tenant = self._require_tenant()
        key = tenant.api_keys.get(key_id)
        if key is None or key["revoked"]:
            raise NotFound(f"API key {key_id} not found (or already revoked)")
        tenant.revoke_api_key(key_id, by)
        await self.store.save(tenant)
        return {"id": key_id, "revoked": True}

    @replies
    async def set_limits(self, own: dict[str, Any], by: str) -> dict[str, Any]:
        """The tenant's own limits (omitted fields take the configured defaults), at once."""
        await self._load()
        tenant = self._require_tenant()
        limits = _limits(self.runner.catalog.tenant_defaults, own)  # validates the mix
        tenant.set_limits(own, by)
        await self.store.save(tenant)
        self.gate.reconfigure(limits, time.monotonic())
        return self.gate.view(time.monotonic())

    @replies
    async def get_limits(self) -> dict[str, Any]:
        await self._load()
        self._require_tenant()
        return self.gate.view(time.monotonic())

    @replies
    async def describe(self) -> dict[str, Any]:
        await self._load()
        return _tenant_view(self._require_tenant())

    # -- models ------------------------------------------------------------------------------

    @replies
    async def set_model_mapping(self, name: str, mapping: dict[str, Any], by: str) -> dict:
        """Map a virtual name to this tenant's own candidates (over the platform's)."""
        await self._load()
        tenant = self._require_tenant()
        await self.runner.view.fresh()
        problems = mapping_problems(name, mapping, self.runner.catalog)
        if problems:
            raise InvalidRequest(problems[0], details={"problems": problems})
        tenant.set_model_mapping(name, mapping, by)
        await self.store.save(tenant)
        self._adopt_policy(tenant)
        return {"name": name, **mapping}

    @replies
    async def set_provider_credential(self, provider: str, api_key: str, by: str) -> dict:
        """Keep the tenant's own key for a provider, encrypted; used only for its calls."""
        await self._load()
        tenant = self._require_tenant()
        spec = self.runner.catalog.providers.get(provider)
        if spec is None:
            raise NotFound(f"provider {provider!r} is not configured on this platform")
        if not spec.requires_api_key:
            raise InvalidRequest(f"provider {provider!r} takes no key")
        hint = api_key[:3] + "…" + api_key[-2:] if len(api_key) > 12 else "…"
        tenant.set_own_provider_key(provider, SecretBox(self.settings).seal(api_key), hint, by)
        await self.store.save(tenant)
        self._adopt_policy(tenant)
        return {"provider": provider, "hint": hint}

    @replies
    async def list_provider_credentials(self) -> dict[str, Any]:
        await self._load()
        creds = self._require_tenant().own_provider_keys
        return {
            "credentials": [{"provider": p, "hint": c["hint"]} for p, c in sorted(creds.items())]
        }

    @replies
    async def remove_provider_credential(self, provider: str, by: str) -> dict[str, Any]:
        await self._load()
        tenant = self._require_tenant()
        if provider not in tenant.own_provider_keys:
            raise NotFound(f"this tenant has no key for {provider!r}")
        tenant.remove_own_provider_key(provider, by)
        await self.store.save(tenant)
        self._adopt_policy(tenant)
        return {"provider": provider, "removed": True}

    # -- tools and MCP servers ----------------------------------------------------------------

    @replies
    async def register_mcp_server(
        self, server: dict[str, Any], secrets: dict[str, dict[str, str]], by: str
    ) -> dict[str, Any]:
        """Register an MCP server, connect to it and list its tools (a failure shows in its
        health; the registration stands)."""
        await self._load()
        tenant = self._require_tenant()
        if any(s["name"] == server["name"] for s in tenant.mcp_servers.values()):
            raise Conflict(f"an MCP server named {server['name']!r} is already registered")
        if server["transport"] == "stdio":
            check_stdio_command(server["command"])
        server = {**server, "id": uuid.uuid4().hex}
        sealed = SecretBox(self.settings).seal(json.dumps(secrets))
        tenant.register_mcp_server(server, sealed, by)
        await self.store.save(tenant)
        connection = McpConnection(server, secrets)
        self.runner.tools.servers[server["id"]] = connection
        await self.runner.tools.open(connection)
        return connection.view()

    @replies
    async def list_mcp_servers(self) -> dict[str, Any]:
        await self._load()
        self._require_tenant()
        return {"servers": [s.view() for s in self.runner.tools.servers.values()]}

    @replies
    async def remove_mcp_server(self, server_id: str, by: str) -> dict[str, Any]:
        await self._load()
        tenant = self._require_tenant()
        connection = self.runner.tools.servers.pop(server_id, None)
        if connection is None:
            raise NotFound(f"MCP server {server_id} not found")
        tenant.remove_mcp_server(server_id, by)
        await self.store.save(tenant)
        await connection.close()
        return {"id": server_id, "removed": True}

    @replies
    async def refresh_mcp_server(self, server_id: str) -> dict[str, Any]:
        await self._load()
        connection = self.runner.tools.servers.get(server_id)
        if connection is None:
            raise NotFound(f"MCP server {server_id} not found")
        try:
            await connection.refresh(self.runner.tools.taken_by_others(connection))
        except Exception:  # shown in the server's health
            pass
        return connection.view()

    @replies
    async def list_tools(self) -> dict[str, Any]:
        """Built-in tools and the tools of this tenant's MCP servers, with their health."""
        await self._load()
        self._require_tenant()
        await self.runner.tools.reopen_failed()
        health = {s.name: s.view()["health"] for s in self.runner.tools.servers.values()}
        return {
            "tools": [
                {**spec.view(), "health": health.get(spec.source, {"status": "ready"})}
                for spec in self.runner.tools.specs().values()
            ]
        }

    @replies
    async def list_model_mappings(self) -> dict[str, Any]:
        await self._load()
        tenant = self._require_tenant()
        return {"mappings": [{"name": n, **m} for n, m in sorted(tenant.model_mappings.items())]}

    @replies
    async def remove_model_mapping(self, name: str, by: str) -> dict[str, Any]:
        await self._load()
        tenant = self._require_tenant()
        if name not in tenant.model_mappings:
            raise NotFound(f"this tenant has no mapping for {name!r}")
        tenant.remove_model_mapping(name, by)
        await self.store.save(tenant)
        self._adopt_policy(tenant)
        return {"name": name, "removed": True}

    @replies
    async def set_model_policy(self, policy: dict[str, Any], by: str) -> dict[str, Any]:
        """Allow-list, parameter defaults and caps for every execution of this tenant."""
        await self._load()
        tenant = self._require_tenant()
        await self.runner.view.fresh()
        unknown = [
            f"allowed_models[{i}]: unknown model {m!r}"
            for i, m in enumerate(policy.get("allowed_models") or [])
            if m not in self.runner.catalog.models
        ]
        if unknown:
            raise InvalidRequest(unknown[0], details={"problems": unknown})
        tenant.set_model_policy(policy, by)
        await self.store.save(tenant)
        self._adopt_policy(tenant)
        return policy

    @replies
    async def get_model_policy(self) -> dict[str, Any]:
        await self._load()
        return self._require_tenant().model_policy

    @replies
    async def models_view(self) -> dict[str, Any]:
        """Every model this tenant can name, and what each virtual name resolves to now."""
        await self._load()
        self._require_tenant()
        await self.runner.view.fresh()
        return models_listing(
            self.runner.catalog,
            self.runner.policy,
            self.runner.providers,
            self.runner.view.open,
            self.runner.view.stats,
        )

    # -- agents ------------------------------------------------------------------------------

    @replies
    async def create_agent(
        self,
        definition: dict[str, Any],
        credential: dict[str, str] | None = None,
        by: str | None = None,
    ) -> dict[str, Any]:
        """Create an agent; a provider credential given with it is kept encrypted."""
        await self._load()
        tenant = self._require_tenant()
        await self.runner.tools.resolve(definition.get("tools") or [])
        await self.runner.check_model(definition["model"], definition.get("tools"))
        agent = Agent(id=uuid.uuid4(), tenant_id=self.tenant_id, definition=definition, by=by)
        tenant.add_agent(str(agent.id))
        if credential and credential.get("api_key"):
            sealed = SecretBox(self.settings).seal(credential["api_key"])
            hint = credential["api_key"][:3] + "…"
            tenant.store_provider_credential(credential["provider_type"], sealed, hint, by)
        await self.store.save(tenant, agent)
        self.agents[str(agent.id)] = agent
        return agent.view()

    @replies
    async def install_agents(
        self, definitions: list[dict[str, Any]], by: str | None = None
    ) -> dict[str, Any]:
        """Create each agent unless one of that name exists (so installing twice is a no-op)."""
        await self._load()
        tenant = self._require_tenant()
        by_name = {a.definition["name"]: a for a in self.agents.values() if not a.deleted}
        created, installed = [], []
        for definition in definitions:
            agent = by_name.get(definition["name"])
            if agent is None:
                await self.runner.tools.resolve(definition.get("tools") or [])
                await self.runner.check_model(definition["model"], definition.get("tools"))
                agent = Agent(
                    id=uuid.uuid4(), tenant_id=self.tenant_id, definition=definition, by=by
                )
                tenant.add_agent(str(agent.id))
                created.append(agent)
            installed.append(agent)
        if created:
            await self.store.save(tenant, *created)
            self.agents.update({str(a.id): a for a in created})
        return {"agents": [a.view() for a in installed], "created": len(created)}

    @replies
    async def list_agents(self) -> list[dict[str, Any]]:
        await self._load()
        self._require_tenant()
        return [a.view() for a in self.agents.values() if not a.deleted]

    @replies
    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        await self._load()
        return self._agent(agent_id).view()

    @replies
    async def update_agent(
        self, agent_id: str, changes: dict[str, Any], by: str | None = None
    ) -> dict[str, Any]:
        await self._load()
        agent = self._agent(agent_id)
        if "model" in changes or "tools" in changes:
            merged = {**agent.definition, **changes}
            await self.runner.tools.resolve(merged.get("tools") or [])
            await self.runner.check_model(merged["model"], merged.get("tools"))
        if changes:
            agent.update(changes, by)
            await self.store.save(agent)
        return agent.view()

    @replies
    async def delete_agent(self, agent_id: str, by: str | None = None) -> dict[str, Any]:
        await self._load()
        agent = self._agent(agent_id)
        agent.delete(by)
        tenant = self._require_tenant()
        tenant.remove_agent(agent_id)
        await self.store.save(tenant, agent)
        self.agents.pop(agent_id, None)
        return {"id": agent_id, "deleted": True}

    # -- executions --------------------------------------------------------------------------

    def _admit(self, agent: Agent, body: dict[str, Any]) -> int:
        """Let one execution in under the tenant's limits; the tokens it reserved."""
        return self.gate.admit(time.monotonic(), estimated_tokens(body, agent.definition))

    @replies
    async def execute(
        self, agent_id: str, body: dict[str, Any], execution_id: str, retried: bool = False
    ) -> dict[str, Any]:
        """Run one execution to its end; a retried call answers from the store if it ran."""
        await self._load()
        agent = self._agent(agent_id)
        if retried:
            await self.runner.raise_if_recorded(execution_id)
        reserved = self._admit(agent, body)
        headers = self.gate.headers(time.monotonic())  # what was left once it was let in
        used = None
        try:
            result = await self.runner.run(agent, body, execution_id)
            used = result["usage"]["total_tokens"]
            return {**result, RATE_LIMIT_HEADERS: headers}
        finally:
            self.gate.settle(time.monotonic(), reserved, used)
            self.last_used = time.monotonic()

    @replies
    async def execute_stream(
        self,
        agent_id: str,
        body: dict[str, Any],
        execution_id: str,
        cancel_on_disconnect: bool,
        retried: bool = False,
    ) -> dict[str, Any]:
        """Start a streamed execution; where to read its events (see `StreamChannel`).

        When the last reader goes away the execution is cancelled, or with
        `cancel_on_disconnect=False` runs on to its end.
        """
        await self._load()
        agent = self._agent(agent_id)
        if retried:
            await self.runner.raise_if_recorded(execution_id)
        reserved = self._admit(agent, body)
        headers = self.gate.headers(time.monotonic())
        live = LiveStream(execution_id, cancel_on_disconnect, self.settings.stream_checkpoint_s)
        self.live[execution_id] = live
        live.task = asyncio.get_running_loop().create_task(
            self.runner.run_stream(agent, body, execution_id, live)
        )
        live.task.add_done_callback(lambda _: self._finished(execution_id, reserved))
        offer = await self.channel.offer(live, 0)
        return {**offer, RATE_LIMIT_HEADERS: headers}

    @replies
    async def resume_stream(self, execution_id: str, after: int) -> dict[str, Any]:
        """The events of a streamed execution after id `after`: a channel offer if it is
        running here, else `{"events": […]}` replayed from the store."""
        await self._load()
        self._require_tenant()
        live = self.live.get(execution_id)
        try:
            if live is None:
                execution = await self.runner.recorded_stream(execution_id)
                events = stream_log.replay(
                    execution_id,
                    execution.stream_events,
                    after,
                    _terminal(execution),
                    execution.stream_complete,
                )
                return {"events": events}
            if after > live.last_id:
                raise ResumeUnavailable(
                    f"event {after} has not been sent; the stream is at {live.last_id}",
                    execution_id=execution_id,
                    details={"last_event_id": after, "replayable_to": live.last_id},
                )
        except ResumeUnavailable as err:
            # said in the stream, without an id, so the client's position stands
            return {"events": [{"event": "error", "data": err.to_dict()}]}
        return await self.channel.offer(live, after)

    async def live_state(self, execution_id: str) -> dict[str, Any] | None:
        """Content and usage so far of a streamed execution running here, else None."""
        live = self.live.get(execution_id)
        return live.state() if live is not None else None

    def _finished(self, execution_id: str, reserved: int) -> None:
        live = self.live.pop(execution_id, None)
        used = (live.usage or {}).get("total_tokens") if live is not None else None
        self.gate.settle(time.monotonic(), reserved, used)
        self.last_used = time.monotonic()

    async def ping(self) -> str:
        return self.tenant_id


def _limits(defaults: TenantDefaults, own: dict[str, Any]) -> TenantLimits:
    """The tenant's effective limits: its own over the configured defaults."""
    base = defaults.model_dump(exclude={"idle_evict_s"})
    return TenantLimits.model_validate({**base, **own})


def _terminal(execution: Execution) -> tuple[str, Any] | None:
    if execution.status == "running":
        return None
    return stream_log.terminal_event(execution.status, execution.result, str(execution.id))


def _tenant_view(tenant: Tenant) -> dict[str, Any]:
    return {
        "id": tenant.tenant_id,
        "name": tenant.name,
        "created_at": tenant.created_on.isoformat(),
    }
