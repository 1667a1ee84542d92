"""Importing a legacy system's records into a tenant, and rolling an import back, in the
tenant's actor (`cb migrate`, docs/migration.md). Every change is an event: agents are
created and deleted as agents are, imported executions are `ImportedExecution`s, and the
`Migration` aggregate records what each run created, batch by batch, in the same save."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from domain import legacy_import as legacy
from domain.agent import Agent
from domain.errors import CBError, Conflict, NotFound
from domain.imported_execution import ImportedExecution
from domain.migration import Migration
from domain.state_agents import checked_config
from domain.tenant import Tenant
from domain.times import iso


class TenantState(Protocol):
    """What an import needs of a tenant's commands (`actors.tenant_commands`)."""

    tenant_id: str
    store: AsyncEventStore
    runner: ExecutionRunner
    agents: dict[str, Agent]

    def require_tenant(self) -> Tenant: ...

    async def check_definition(self, definition: dict[str, Any]) -> None: ...


BATCH = 200  # records per save


class LegacyImports:
    """`plan_import`, `run_import`, `describe` and `roll_back` over a tenant's commands."""

    def __init__(self, commands: TenantState) -> None:
        self.commands = commands

    def _get(self, aggregate_id: str) -> Aggregate | None:
        try:
            return self.commands.store.app.repository.get(uuid.UUID(aggregate_id))
        except AggregateNotFoundError:
            return None

    async def _existing(self, ids: list[str]) -> dict[str, Aggregate]:
        def read() -> dict[str, Aggregate]:
            found = {i: self._get(i) for i in ids}
            return {i: a for i, a in found.items() if a is not None}

        return await self.commands.store.run(read)

    def _known_models(self) -> set[str]:
        config = self.commands.runner.config
        tenant = self.commands.require_tenant()
        return {*config.models, *config.virtual_models, *tenant.model_mappings}

    async def plan(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each legacy record: `create` (with its id here), `skip` (imported before) or
        `error` (why it cannot be), in the order they would be imported."""
        tenant_id = self.commands.tenant_id
        model_map = dict(body.get("model_map") or {})
        known = self._known_models()
        sources = {kind: list(body.get(f"{kind}s") or []) for kind in legacy.KINDS}
        ids = {
            kind: {
                str(r.get("id")): legacy.imported_id(tenant_id, kind, str(r.get("id")))
                for r in records
                if isinstance(r, Mapping) and r.get("id")
            }
            for kind, records in sources.items()
        }
        referenced = {  # agents the configs and executions name, imported earlier or now
            str(r["agentId"]): legacy.imported_id(tenant_id, "agent", str(r["agentId"]))
            for kind in ("state_agent_config", "execution")
            for r in sources[kind]
            if isinstance(r, Mapping) and r.get("agentId")
        }
        aggregates = (ids["agent"], ids["execution"], referenced)  # configs live in the tenant
        existing = await self._existing([i for found in aggregates for i in found.values()])
        plan: list[dict[str, Any]] = []
        agent_ids = {  # the agents here or to be, for configs and executions
            old: new
            for old, new in referenced.items()
            if isinstance(existing.get(new), Agent) and not existing[new].deleted
        }
        for kind, records in sources.items():
            seen: set[str] = set()
            for record in records:
                mapped = legacy.mapped(kind, record, model_map, known, agent_ids)
                if mapped.problem is None and mapped.legacy_id in seen:
                    plan.append({"kind": kind, "legacy_id": mapped.legacy_id, "action": "skip",
                                 "reason": "given twice in the source"})  # fmt: skip
                    continue
                seen.add(mapped.legacy_id)
                plan.append(await self._step(mapped, record, ids[kind], existing))
            if kind == "agent":
                agent_ids |= {s["legacy_id"]: s["id"] for s in plan if s["action"] == "create"}
        return plan

    async def _step(
        self,
        mapped: legacy.Mapped,
        source: Any,
        ids: Mapping[str, str],
        existing: Mapping[str, Aggregate],
    ) -> dict[str, Any]:
        step: dict[str, Any] = {"kind": mapped.kind, "legacy_id": mapped.legacy_id}
        if mapped.problem is not None:
            return {**step, "action": "error", "reason": mapped.problem}
        new_id = ids[mapped.legacy_id]
        step["id"] = new_id
        if new_id in existing:
            return {**step, "action": "skip", "reason": _why_skipped(existing[new_id])}
        if mapped.kind == "state_agent_config":
            tenant = self.commands.require_tenant()
            config_id = uuid.UUID(new_id).hex
            step["id"] = config_id
            if config_id in tenant.state_agent_configs:
                return {**step, "action": "skip", "reason": "imported before"}
        try:
            await self._check(mapped)
        except CBError as exc:
            return {**step, "action": "error", "reason": exc.message}
        return {**step, "action": "create", "record": mapped.record, "source": source}

    async def _check(self, mapped: legacy.Mapped) -> None:
        if mapped.kind == "agent":
            await self.commands.check_definition(mapped.record)
        elif mapped.kind == "state_agent_config":
            mapped.record = checked_config(mapped.record)

    async def run(self, body: Mapping[str, Any], by: str | None) -> dict[str, Any]:
        """Plan, then (unless `dry_run`) create what the plan says, batch by batch."""
        plan = await self.plan(body)
        answer: dict[str, Any] = {"plan": [_shown(step) for step in plan], "counts": _counts(plan)}
        if body.get("dry_run"):
            return {**answer, "migration_id": None}
        if body.get("migration_id"):  # a later part of a run sent in parts
            migration = await self.migration(str(body["migration_id"]))
            if migration.finished or migration.rolled_back is not None:
                raise Conflict(f"migration {migration.id} has ended: start a new one")
        else:
            migration = Migration(
                id=uuid.uuid4(),
                tenant_id=self.commands.tenant_id,
                source=dict(body.get("source") or {}),
                model_map=dict(body.get("model_map") or {}),
                planned=answer["counts"],
                by=by,
            )
            await self.commands.store.save(migration)
        creating = [step for step in plan if step["action"] == "create"]
        for start in range(0, len(creating), BATCH):
            await self._save_batch(migration, creating[start : start + BATCH], by)
        if body.get("final", True):
            migration.finish(_counts(plan))
            await self.commands.store.save(migration)
        return {**answer, "migration_id": str(migration.id)}

    async def _save_batch(
        self, migration: Migration, steps: list[dict[str, Any]], by: str | None
    ) -> None:
        commands = self.commands
        tenant = commands.require_tenant()
        created: list[Aggregate] = []
        for step in steps:
            if step["kind"] == "agent":
                agent = Agent(
                    id=uuid.UUID(step["id"]), tenant_id=tenant.tenant_id,
                    definition=step["record"], by=by,
                )  # fmt: skip
                tenant.add_agent(step["id"])
                created.append(agent)
            elif step["kind"] == "state_agent_config":
                config = {**step["record"], "id": step["id"], "created_at": iso(time.time())}
                tenant.configure_state_agent(config, by)
            else:
                execution = ImportedExecution(
                    id=uuid.UUID(step["id"]), tenant_id=tenant.tenant_id,
                    migration_id=str(migration.id), record=step["record"],
                )  # fmt: skip
                created.append(execution)
        migration.add_records(
            [{k: s[k] for k in ("kind", "legacy_id", "id", "source")} for s in steps]
        )
        await commands.store.save(tenant, migration, *created)
        for aggregate in created:
            if isinstance(aggregate, Agent):
                commands.agents[str(aggregate.id)] = aggregate

    async def migration(self, migration_id: str) -> Migration:
        found = await self._existing([migration_id]) if _is_uuid(migration_id) else {}
        migration = found.get(migration_id)
        if not isinstance(migration, Migration) or migration.tenant_id != self.commands.tenant_id:
            raise NotFound(f"migration {migration_id} not found")
        return migration

    async def _created(self, migration: Migration) -> dict[str, Aggregate]:
        """The agents and executions the migration created that are still in the store."""
        kept = [r["id"] for r in migration.records if r["kind"] != "state_agent_config"]
        return await self._existing(kept)

    async def describe(self, migration_id: str) -> dict[str, Any]:
        """The migration, and each record it created with its source and what is here now
        (None when it is gone)."""
        migration = await self.migration(migration_id)
        existing = await self._created(migration)
        configs = self.commands.require_tenant().state_agent_configs
        records = []
        for record in migration.records:
            records.append({**record, "current": _current(record, existing, configs)})
        return {**migration.as_api(), "records": records}

    async def roll_back(self, migration_id: str, by: str | None) -> dict[str, Any]:
        """Remove what the migration created and is still here (agents deleted, state agent
        configurations removed, imported executions retracted); nothing else."""
        migration = await self.migration(migration_id)
        commands, tenant = self.commands, self.commands.require_tenant()
        existing = await self._created(migration)
        removed = {kind: 0 for kind in legacy.KINDS}
        changed_since: list[str] = []
        touched: list[Aggregate] = []
        for record in migration.records:
            found = existing.get(record["id"])
            if record["kind"] == "agent" and isinstance(found, Agent) and not found.deleted:
                if found.version > 1:
                    changed_since.append(record["id"])
                found.delete(by)
                tenant.remove_agent(record["id"])
                touched.append(found)
            elif record["kind"] == "state_agent_config":
                if record["id"] in tenant.state_agent_configs:
                    tenant.remove_state_agent_config(record["id"], by)
                else:
                    continue
            elif isinstance(found, ImportedExecution) and not found.retracted:
                found.retract(migration_id, by)
                touched.append(found)
            else:
                continue
            removed[record["kind"]] += 1
        migration.roll_back(removed, by)
        await commands.store.save(tenant, migration, *touched)
        for aggregate in touched:
            if isinstance(aggregate, Agent):
                commands.agents.pop(str(aggregate.id), None)
        return {
            "id": migration_id,
            "removed": removed,
            "agents_changed_since_import": changed_since,
            "rolled_back_agent_ids": [str(a.id) for a in touched if isinstance(a, Agent)],
        }


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _why_skipped(found: Aggregate) -> str:
    if isinstance(found, Agent) and found.deleted:
        return "imported before and since deleted (or rolled back): not imported again"
    if isinstance(found, ImportedExecution) and found.retracted:
        return "imported before and since rolled back: not imported again"
    return "imported before"


def _shown(step: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in step.items() if k != "source"}


def _counts(plan: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {k: {"create": 0, "skip": 0, "error": 0}
                                         for k in legacy.KINDS}  # fmt: skip
    for step in plan:
        counts[step["kind"]][step["action"]] += 1
    return counts


def _current(
    record: Mapping[str, Any],
    existing: Mapping[str, Aggregate],
    configs: Mapping[str, dict[str, Any]],
) -> dict[str, Any] | None:
    """What is here now for a record a migration created, in its mapped form."""
    if record["kind"] == "state_agent_config":
        return configs.get(record["id"])
    found = existing.get(record["id"])
    if isinstance(found, Agent) and not found.deleted:
        return dict(found.definition)
    if isinstance(found, ImportedExecution) and not found.retracted:
        return dict(found.record)
    return None
