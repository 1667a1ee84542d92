"""Typed clients of the actors the ingress calls: one method per actor method, each unwrapping
the actor's reply (`actors.replies`), so a refusal is raised here as the CBError it was.

A client reaches its actor through a `Peer`: the actor's name and a way to get (or start) its
handle. `Actors` makes the peers of a Ray deployment; a test passes peers over fake handles.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import config_actor, names, projection_actor, provider_actor, tenant_actor, tracing
from actors.call_line import CallLine, LineLost
from actors.replies import WithHeaders, unwrap, unwrap_with_headers
from actors.settings import Settings
from api.streaming import Opened, open_stream
from domain.errors import CapacityExhausted

log = logging.getLogger(__name__)

RECREATE_ATTEMPTS = 20
KEY_HIT_TTL_S = 5.0  # how long a verdict is kept (a revocation is pushed: see KeyDirectory)
KEY_MISS_TTL_S = 1.0
REVOCATION_WAIT_S = 25.0  # a long poll of the revocation feed answers within this
MAX_CACHED_KEYS = 100_000

Reply = dict[str, Any]
Invoke = Callable[[Any, int], Awaitable[Reply]]


PLACEMENT_RETRY_AFTER_S = 5.0


@dataclass(frozen=True)
class Peer:
    """One actor as the ingress reaches it: its name, its handle (started if need be), and
    its handle only if it runs now.

    With `start_timeout_s`, an actor started here must answer (be placed on a node and
    start) within it, or it is given up and the call refused with `CapacityExhausted`.
    """

    name: str
    handle_of: Callable[[], Any]
    running: Callable[[], Any | None]
    start_timeout_s: float | None = None

    async def call(self, invoke: Invoke, cancel_remote: bool = False) -> Reply:
        """`invoke(handle, attempt)`; if the actor was evicted or died, recreate it and again.

        `invoke` is told which attempt it is, so a call that may already have run once (an
        execution) can ask the new actor to check the store instead of running it twice.
        With `cancel_remote`, cancelling the caller cancels the actor's task too (an
        execution whose client went away).
        """
        for attempt in range(RECREATE_ATTEMPTS):
            try:
                handle = self.handle_of()
                if self.start_timeout_s is not None and names.unconfirmed(self.name):
                    await _placed(self.name, handle, self.start_timeout_s)
                pending = invoke(handle, attempt)
                try:
                    return await pending
                except asyncio.CancelledError:
                    if cancel_remote and isinstance(pending, ray.ObjectRef):
                        ray.cancel(pending)  # an async actor's task: Ray cancels its coroutine
                    raise
            except (ActorDiedError, ActorUnavailableError):
                if attempt == RECREATE_ATTEMPTS - 1:
                    raise
                names.forget(self.name)
                if attempt:  # the first retry at once: an evicted actor is simply gone
                    await asyncio.sleep(0.1)
        raise AssertionError("unreachable")

    async def ask(self, invoke: Callable[[Any], Awaitable[Reply]]) -> Any:
        """Call an actor method that is safe to repeat; its value, or its error raised."""
        return unwrap(await self.call(lambda handle, _: invoke(handle)))


_placing: dict[str, asyncio.Future[None]] = {}


async def _placed(name: str, handle: Any, timeout_s: float) -> None:
    """Wait until the actor just started as `name` answers; one wait per name at a time."""
    placing = _placing.get(name)
    if placing is None or placing.done():
        placing = asyncio.ensure_future(_wait_placed(name, handle, timeout_s))
        _placing[name] = placing
    await asyncio.shield(placing)


async def _wait_placed(name: str, handle: Any, timeout_s: float) -> None:
    try:
        await asyncio.wait_for(handle.ping.remote(), timeout_s)
    except TimeoutError:
        ray.kill(handle, no_restart=True)  # still waiting for room: never started later
        names.forget(name)
        log.warning("actor %s found no node with room within %.0f s", name, timeout_s)
        raise CapacityExhausted(
            "no node of the cluster has room for this tenant's runtime now; retry later",
            retry_after=PLACEMENT_RETRY_AFTER_S,
        ) from None
    names.confirm(name)


class Actors:
    """The peers of a deployment's actors in Ray, by the deployment's actor names."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def tenant(self, tenant_id: str) -> Peer:
        name = names.tenant_actor_name(self.settings, tenant_id)
        return Peer(
            name,
            lambda: tenant_actor.handle(self.settings, tenant_id),
            lambda: names.existing(name),
            self.settings.tenant_start_timeout_s if self.settings.tenant_resource else None,
        )

    def config_actor(self) -> Peer:
        name = names.config_actor_name(self.settings)
        return self._peer(name, lambda: config_actor.handle(self.settings))

    def projection(self) -> Peer:
        name = names.projection_actor_name(self.settings)
        return self._peer(name, lambda: projection_actor.handle(self.settings))

    def provider(self, provider: str) -> Peer:
        name = names.provider_actor_name(self.settings, provider)
        return self._peer(name, lambda: provider_actor.handle(self.settings, provider))

    @staticmethod
    def _peer(name: str, handle_of: Callable[[], Any]) -> Peer:
        return Peer(name, handle_of, lambda: names.existing(name))


class CallLines:
    """One replica's call lines to tenant actors (`actors.call_line`), one per actor, opened
    on first use with one Ray call that tells where and with what secret."""

    def __init__(self) -> None:
        self._lines: dict[str, asyncio.Future[CallLine]] = {}

    async def line(self, peer: Peer) -> CallLine:
        """The open line to the peer's actor; raises if none can be opened."""
        opening = self._lines.get(peer.name)
        if opening is not None and opening.done() and _open_line(opening) is None:
            opening = None
        if opening is None:
            opening = asyncio.ensure_future(self._open(peer))
            self._lines[peer.name] = opening
        return await asyncio.shield(opening)

    def current(self, peer: Peer) -> CallLine | None:
        """The line to the peer's actor if one is open now (none is opened here)."""
        opening = self._lines.get(peer.name)
        return _open_line(opening) if opening is not None and opening.done() else None

    @staticmethod
    async def _open(peer: Peer) -> CallLine:
        address = await peer.ask(lambda h: h.call_line.remote())
        return await CallLine.open(address["host"], address["port"], address["secret"])


def _open_line(opened: asyncio.Future[CallLine]) -> CallLine | None:
    """The line an opening (done) gave, if it opened and is still open."""
    if opened.cancelled() or opened.exception() or opened.result().closed:
        return None
    return opened.result()


class TenantClient:
    """A tenant's actor: the tenant, its keys, limits, models, tools, agents, executions.

    With `lines`, executions travel on the replica's call line to the actor; without (or
    when the line is lost), as Ray calls.
    """

    def __init__(self, peer: Peer, lines: CallLines | None = None) -> None:
        self.peer = peer
        self.lines = lines

    async def _execution(
        self,
        method: str,
        args: list[Any],
        invoke: Callable[[Any, bool, str | None], Awaitable[Reply]],
    ) -> WithHeaders:
        """An execution's reply (whole, or a stream's start), over the call line when there is
        one; `retried` and the trace context (`traceparent`, or None) are appended to `args`,
        and `invoke(handle, retried, traceparent)` is the same call through Ray."""
        retried = False
        traceparent = tracing.outgoing()
        if self.lines is not None:
            try:
                line = await self.lines.line(self.peer)
                return unwrap_with_headers(await line.call(method, [*args, False, traceparent]))
            except LineLost as lost:
                retried = lost.sent  # it may have started: the actor checks the store first
            except OSError:
                pass  # no line could be opened: Ray carries it
        reply = await self.peer.call(
            lambda handle, attempt: invoke(handle, retried or attempt > 0, traceparent),
            cancel_remote=True,
        )
        return unwrap_with_headers(reply)

    async def create_tenant(self, name: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.create_tenant.remote(name, by))

    async def describe(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.describe.remote())

    async def issue_api_key(
        self, scopes: list[str], expires_at: float | None, by: str
    ) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.issue_api_key.remote(scopes, expires_at, by))

    async def revoke_api_key(self, key_id: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.revoke_api_key.remote(key_id, by))

    async def set_limits(self, own: dict[str, Any], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.set_limits.remote(own, by))

    async def get_limits(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_limits.remote())

    async def set_retention(self, retention: dict[str, Any] | None, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.set_retention.remote(retention, by))

    async def get_retention(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_retention.remote())

    async def erase_subject(self, subject: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.erase_subject.remote(subject, by))

    async def give_feedback(
        self, execution_id: str, feedback: dict[str, Any], by: str, actor: str, may_write: bool
    ) -> dict[str, Any]:
        return await self.peer.ask(
            lambda h: h.give_feedback.remote(execution_id, feedback, by, actor, may_write)
        )

    async def judge_execution(self, execution_id: str, spec: dict[str, Any]) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.judge_execution.remote(execution_id, spec))

    async def set_judge(self, judge: dict[str, Any] | None, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.set_judge.remote(judge, by))

    async def get_judge(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_judge.remote())

    async def start_experiment(
        self, body: dict[str, Any], sources: list[str], by: str
    ) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.start_experiment.remote(body, sources, by))

    async def get_experiment(self, experiment_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_experiment.remote(experiment_id))

    async def list_experiments(self) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_experiments.remote())

    async def experiment_progress(self, experiment_id: str, after: int) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.experiment_progress.remote(experiment_id, after))

    async def cancel_experiment(self, experiment_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.cancel_experiment.remote(experiment_id))

    async def create_collaboration(self, body: dict[str, Any], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.create_collaboration.remote(body, by))

    async def list_collaborations(self) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_collaborations.remote())

    async def get_collaboration(self, collaboration_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_collaboration.remote(collaboration_id))

    async def update_collaboration(
        self, collaboration_id: str, changes: dict[str, Any], by: str
    ) -> dict[str, Any]:
        return await self.peer.ask(
            lambda h: h.update_collaboration.remote(collaboration_id, changes, by)
        )

    async def delete_collaboration(self, collaboration_id: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.delete_collaboration.remote(collaboration_id, by))

    async def run_collaboration(
        self,
        run_id: str,
        collaboration_id: str | None,
        definition: dict[str, Any] | None,
        inputs: dict[str, Any],
        by: str,
    ) -> dict[str, Any]:
        """Start the run (repeatable: the run id makes a second start return the first)."""
        return await self.peer.ask(lambda h: h.run_collaboration.remote(
            run_id, collaboration_id, definition, inputs, by))  # fmt: skip

    async def wait_collaboration_run(self, run_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.wait_collaboration_run.remote(run_id))

    async def get_collaboration_run(self, run_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_collaboration_run.remote(run_id))

    async def collaboration_run_events(self, run_id: str, after: int) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.collaboration_run_events.remote(run_id, after))

    async def cancel_collaboration_run(self, run_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.cancel_collaboration_run.remote(run_id))

    async def set_budget(self, scope: str, budget: dict[str, Any], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.set_budget.remote(scope, budget, by))

    async def get_budget(self, scope: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_budget.remote(scope))

    async def list_budgets(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.list_budgets.remote())

    async def remove_budget(self, scope: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.remove_budget.remote(scope, by))

    async def set_model_mapping(self, name: str, mapping: dict[str, Any], by: str) -> Any:
        return await self.peer.ask(lambda h: h.set_model_mapping.remote(name, mapping, by))

    async def list_model_mappings(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.list_model_mappings.remote())

    async def remove_model_mapping(self, name: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.remove_model_mapping.remote(name, by))

    async def set_model_policy(self, policy: dict[str, Any], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.set_model_policy.remote(policy, by))

    async def get_model_policy(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_model_policy.remote())

    async def models_view(self) -> dict[str, Any]:
        """Every model the tenant can name, and what each virtual name resolves to now."""
        return await self.peer.ask(lambda h: h.models_view.remote())

    async def set_own_provider_key(self, provider: str, api_key: str, by: str) -> Any:
        """Keep the tenant's own key for a provider (the actor's `set_provider_credential`)."""
        return await self.peer.ask(
            lambda h: h.set_provider_credential.remote(provider, api_key, by)
        )

    async def list_own_provider_keys(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.list_provider_credentials.remote())

    async def remove_own_provider_key(self, provider: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.remove_provider_credential.remote(provider, by))

    async def register_mcp_server(
        self, server: dict[str, Any], secrets: dict[str, dict[str, str]], by: str
    ) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.register_mcp_server.remote(server, secrets, by))

    async def list_mcp_servers(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.list_mcp_servers.remote())

    async def remove_mcp_server(self, server_id: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.remove_mcp_server.remote(server_id, by))

    async def refresh_mcp_server(self, server_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.refresh_mcp_server.remote(server_id))

    async def list_tools(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.list_tools.remote())

    async def check_provider(self, provider: str) -> dict[str, Any]:
        """Run a real health check of `provider` from this tenant's actor."""
        return await self.peer.ask(lambda h: h.check_provider.remote(provider))

    async def create_agent(
        self, definition: dict[str, Any], legacy_credential: dict[str, str] | None, by: str
    ) -> dict[str, Any]:
        """Create an agent; `legacy_credential` is GraphQL's provider apiKey, kept encrypted."""
        return await self.peer.ask(
            lambda h: h.create_agent.remote(definition, legacy_credential, by)
        )

    async def clear_cache(self, by: str) -> int:
        """Forget the tenant's cached answers; how many there were."""
        return await self.peer.ask(lambda h: h.clear_cache.remote(by))

    async def create_agent_once(
        self, definition: dict[str, Any], by: str, idempotency_key: str
    ) -> WithHeaders:
        """Create an agent under an idempotency key: a repeat answers with the first's agent
        (and the `Idempotent-Replayed` header)."""
        reply = await self.peer.call(
            lambda h, _: h.create_agent.remote(definition, None, by, idempotency_key)
        )
        return unwrap_with_headers(reply)

    async def create_state_agent_config(self, config: dict[str, Any], by: str) -> dict:
        return await self.peer.ask(lambda h: h.create_state_agent_config.remote(config, by))

    async def list_state_agent_configs(self, state_id: str | None) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_state_agent_configs.remote(state_id))

    async def trigger_state_agents(
        self, resource_id: str, state_id: str, data: Any
    ) -> list[dict[str, Any]]:
        """Run the state's enabled agent configurations for the resource; one answer each."""
        return await self.peer.ask(
            lambda h: h.trigger_state_agents.remote(resource_id, state_id, data)
        )

    async def import_legacy(self, body: dict[str, Any], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.import_legacy.remote(body, by))

    async def describe_migration(self, migration_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.describe_migration.remote(migration_id))

    async def roll_back_migration(self, migration_id: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.roll_back_migration.remote(migration_id, by))

    async def install_agents(self, definitions: list[dict[str, Any]], by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.install_agents.remote(definitions, by))

    async def list_agents(self) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_agents.remote())

    async def get_agent(self, agent_id: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.get_agent.remote(agent_id))

    async def update_agent(self, agent_id: str, changes: dict[str, Any], by: str) -> dict:
        return await self.peer.ask(lambda h: h.update_agent.remote(agent_id, changes, by))

    async def delete_agent(self, agent_id: str, by: str) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.delete_agent.remote(agent_id, by))

    async def execute(self, agent_id: str, request: dict[str, Any]) -> WithHeaders:
        """Run an execution: its result document (`domain.results.result_document`), with the
        tenant's X-RateLimit-* headers.
        Its id is fixed here, so a retried call never runs it twice."""
        execution_id = str(uuid.uuid4())
        return await self._execution(
            "execute",
            [agent_id, request, execution_id],
            lambda h, retried, tp: h.execute.remote(agent_id, request, execution_id, retried, tp),
        )

    async def complete_chat(
        self, job: dict[str, Any], agent_id: str | None, execution_id: str
    ) -> WithHeaders:
        """Run a chat completion (`ChatCompletionRequest.as_job()`) with this id to its end:
        its result document, with the tenant's X-RateLimit-* headers."""
        return await self._execution(
            "complete_chat",
            [job, agent_id, execution_id],
            lambda h, retried, tp: h.complete_chat.remote(job, agent_id, execution_id, retried, tp),
        )

    async def complete_chat_stream(
        self, job: dict[str, Any], agent_id: str | None, execution_id: str, include_usage: bool
    ) -> Opened:
        """Start a streamed chat completion, routed, and connect to its OpenAI chunks."""
        reply = await self._execution(
            "complete_chat_stream",
            [job, agent_id, execution_id, include_usage],
            lambda h, retried, tp: h.complete_chat_stream.remote(
                job, agent_id, execution_id, include_usage, retried, tp
            ),
        )
        return await self._claim(reply.value, reply.headers, openai=True)

    async def execute_stream(
        self, agent_id: str, request: dict[str, Any], cancel_on_disconnect: bool
    ) -> Opened:
        """Start a streamed execution (its id fixed here, as for `execute`) and connect to it;
        a refusal raises here."""
        execution_id = str(uuid.uuid4())
        reply = await self._execution(
            "execute_stream",
            [agent_id, request, execution_id, cancel_on_disconnect],
            lambda h, retried, tp: h.execute_stream.remote(
                agent_id, request, execution_id, cancel_on_disconnect, retried, tp
            ),
        )
        opened = await self._claim(reply.value, reply.headers)
        opened.reopen = lambda after: self.resume_stream(execution_id, after)
        return opened

    async def resume_stream(self, execution_id: str, after: int) -> Opened:
        """Join a streamed execution after event `after` (an interrupted one runs again as a
        new attempt); reopened the same way if its actor goes away."""
        opened = await self._claim(
            await self.peer.ask(lambda h: h.resume_stream.remote(execution_id, after))
        )
        opened.reopen = lambda last: self.resume_stream(execution_id, last)
        return opened

    async def _claim(
        self, offer: dict[str, Any], headers: dict[str, str] | None = None, openai: bool = False
    ) -> Opened:
        """Open the offered stream: on this replica's call line to the actor when one is open
        (the stream then needs no connection of its own)."""
        line = self.lines.current(self.peer) if self.lines is not None else None
        return await open_stream(offer, headers, openai, line)

    async def cancel_stream(self, execution_id: str) -> bool:
        """Cancel a streamed execution running in the actor; False when none runs there."""
        return bool(await self.peer.ask(lambda h: h.cancel_stream.remote(execution_id)))

    async def live_state(self, execution_id: str) -> dict[str, Any] | None:
        """Content and usage so far of a streamed execution running in the actor, else None."""
        return await self.peer.ask(lambda h: h.live_state.remote(execution_id))

    async def stop(self) -> None:
        """Stop the tenant's actor if it runs (its sessions and processes end with it)."""
        handle = self.peer.running()
        if handle is None:
            return
        try:
            await handle.stop.remote()
        except RayActorError:  # it exited, as asked
            pass
        names.forget(self.peer.name)


class ConfigClient:
    """The config actor: the effective configuration and the operators' changes to it.

    After a change, `on_change` runs, so the change is visible on this replica at once.
    """

    def __init__(self, peer: Peer, on_change: Callable[[], Awaitable[Any]]) -> None:
        self.peer = peer
        self.on_change = on_change

    async def snapshot(self, known: str | None = None) -> dict[str, Any] | None:
        """The effective configuration and its version; None when `known` is current."""
        return await self.peer.ask(lambda h: h.snapshot.remote(known))

    async def describe(self) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.describe.remote())

    async def set_virtual_model(self, name: str, definition: dict[str, Any], by: str) -> Any:
        return await self._change(lambda h: h.set_virtual_model.remote(name, definition, by))

    async def remove_virtual_model(self, name: str, by: str) -> Any:
        return await self._change(lambda h: h.remove_virtual_model.remote(name, by))

    async def set_provider(self, name: str, changes: dict[str, Any], by: str) -> Any:
        return await self._change(lambda h: h.set_provider.remote(name, changes, by))

    async def set_ingress(self, changes: dict[str, Any], by: str) -> Any:
        return await self._change(lambda h: h.set_ingress.remote(changes, by))

    async def reload(self, by: str) -> Any:
        return await self._change(lambda h: h.reload.remote(by))

    async def _change(self, invoke: Callable[[Any], Awaitable[Reply]]) -> Any:
        value = await self.peer.ask(invoke)
        await self.on_change()
        return value


class ReadModels:
    """The projection actor: key directory, audit trail, execution history, tenant data."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    async def ping(self) -> int:
        return await self.peer.ask(lambda h: h.ping.remote())

    async def catch_up(self) -> int:
        return await self.peer.ask(lambda h: h.catch_up.remote())

    async def lookup_key(self, key_hash: str) -> dict[str, Any] | None:
        return await self.peer.ask(lambda h: h.lookup_key.remote(key_hash))

    async def note_revocations(self, key_ids: list[str]) -> int:
        return await self.peer.ask(lambda h: h.note_revocations.remote(key_ids))

    async def revocations_after(
        self, epoch: str | None, seq: int, wait_s: float, follower: str
    ) -> dict[str, Any]:
        return await self.peer.ask(
            lambda h: h.revocations_after.remote(epoch, seq, wait_s, follower)
        )

    async def list_tenants(self, limit: int, before: float | None) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_tenants.remote(limit, before))

    async def list_keys(self, tenant_id: str) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_keys.remote(tenant_id))

    async def record_security(self, entries: list[dict[str, Any]]) -> None:
        await self.peer.ask(lambda h: h.record_security.remote(entries))

    async def record_deprecations(self, rows: list[dict[str, Any]]) -> None:
        await self.peer.ask(lambda h: h.record_deprecations.remote(rows))

    async def deprecated_usage(self, tenant_id: str | None) -> list[dict[str, Any]]:
        """Deprecated field use per field of the tenant (every tenant's when None)."""
        return await self.peer.ask(lambda h: h.deprecated_usage.remote(tenant_id))

    async def list_audit(
        self,
        tenant_id: str,
        kinds: list[str],
        since: float | None,
        until: float | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        return await self.peer.ask(
            lambda h: h.list_audit.remote(tenant_id, kinds, since, until, limit)
        )

    async def get_execution(self, tenant_id: str, execution_id: str) -> dict[str, Any] | None:
        return await self.peer.ask(lambda h: h.get_execution.remote(tenant_id, execution_id))

    async def get_executions(self, tenant_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        return await self.peer.ask(lambda h: h.get_executions.remote(tenant_id, ids))

    async def analytics(
        self, question: str, tenant_id: str, start: float, end: float, **args: Any
    ) -> list[dict[str, Any]]:
        return await self.peer.ask(
            lambda h: h.analytics.remote(question, tenant_id, start, end, **args)
        )

    async def lag(self) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.lag.remote())

    async def list_executions(
        self, tenant_id: str, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_executions.remote(tenant_id, filters))

    async def list_collaboration_runs(
        self, tenant_id: str, filters: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.list_collaboration_runs.remote(tenant_id, filters))

    async def collaboration_analytics(
        self, tenant_id: str, start: float, end: float, collaboration_id: str | None
    ) -> dict[str, Any]:
        return await self.peer.ask(lambda h: h.collaboration_analytics.remote(
            tenant_id, start, end, collaboration_id))  # fmt: skip

    async def migration_tenant(self, migration_id: str) -> str | None:
        return await self.peer.ask(lambda h: h.migration_tenant.remote(migration_id))

    async def budget_events(self, tenant_id: str, after: int, limit: int) -> list[dict]:
        """The tenant's budget events after `after` (`id`, `event`, `data`), oldest first."""
        return await self.peer.ask(lambda h: h.budget_events.remote(tenant_id, after, limit))

    async def export_tenant(self, tenant_id: str) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.export_tenant.remote(tenant_id))

    async def erase_tenant(self, tenant_id: str) -> dict[str, int]:
        return await self.peer.ask(lambda h: h.erase_tenant.remote(tenant_id))

    async def subject_data(
        self, tenant_id: str, subject_ref: str, with_events: bool
    ) -> dict[str, Any]:
        return await self.peer.ask(
            lambda h: h.subject_data.remote(tenant_id, subject_ref, with_events)
        )

    async def sweep_retention(self) -> list[dict[str, Any]]:
        return await self.peer.ask(lambda h: h.sweep_retention.remote())


class KeyDirectory:
    """The read models' key directory as one replica caches it (a hit for 5 s, a miss 1 s).

    A revocation does not wait for the cache: the replica that revoked forgets the key at
    once, and every replica follows the projection actor's revocation feed (a long poll
    answered the moment a key is revoked), refusing those keys from then on.
    """

    def __init__(self, read_models: ReadModels, follow: bool = True) -> None:
        self.read_models = read_models
        self._cache: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self.revoked: set[str] = set()  # key ids revoked since this replica started
        self.follow = follow  # off where there is no feed to follow (tests over fakes)
        self.follower = uuid.uuid4().hex  # this replica, to the feed
        self._following: asyncio.Task[None] | None = None

    async def lookup(self, key_hash: str) -> dict[str, Any] | None:
        """The key's record (tenant, scopes, expiry, revoked), or None for an unknown key."""
        self._follow()
        now = time.monotonic()
        hit = self._cache.get(key_hash)
        if hit is not None and hit[0] > now:
            return self._checked(hit[1])
        record = await self.read_models.lookup_key(key_hash)
        self._cache[key_hash] = (now + (KEY_HIT_TTL_S if record else KEY_MISS_TTL_S), record)
        if len(self._cache) > MAX_CACHED_KEYS:
            self._cache.clear()
        return self._checked(record)

    def _checked(self, record: dict[str, Any] | None) -> dict[str, Any] | None:
        if record is not None and not record["revoked"] and record["key_id"] in self.revoked:
            return {**record, "revoked": True}
        return record

    def forget(self, key_ids: list[str]) -> None:
        """Refuse these keys from now on, whatever the cache says."""
        self.revoked.update(key_ids)
        if len(self.revoked) > MAX_CACHED_KEYS:  # the read model says it too, once refolded
            self.revoked = set(key_ids)
            self._cache.clear()

    async def revoked_here(self, key_ids: list[str]) -> None:
        """Keys this replica revoked (or erased): refused here at once; the others are told,
        and this returns once they have applied it (or after a second)."""
        self.forget(key_ids)
        await self.read_models.note_revocations(key_ids)

    def _follow(self) -> None:
        if self.follow and (self._following is None or self._following.done()):
            self._following = asyncio.get_running_loop().create_task(self._follow_feed())

    async def _follow_feed(self) -> None:
        epoch: str | None = None
        seq = 0
        while True:
            try:
                news = await self.read_models.revocations_after(
                    epoch, seq, REVOCATION_WAIT_S, self.follower
                )
            except Exception:  # the projection actor is away: what it said may be lost
                log.warning("the revocation feed failed; cached keys forgotten", exc_info=True)
                self._cache.clear()
                epoch = None
                await asyncio.sleep(1.0)
                continue
            if news["reset"]:
                self._cache.clear()
            self.forget(news["key_ids"])
            epoch, seq = news["epoch"], news["seq"]


class ProviderClient:
    """A provider's actor, as the ingress sees it: its health."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer

    async def health(self) -> dict[str, Any]:
        """Breaker state, error rate, latency and the last error."""
        return await self.peer.ask(lambda h: h.health.remote())
