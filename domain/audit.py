"""The audit trail: which recorded events are audit entries, and the security record.

Changes (keys, limits, budgets, agents, model configuration, credentials, MCP servers) are
audited from the events that made them, as are budget thresholds crossed. What the ingress
refused (authentication failures, permission denials, cross-tenant attempts) is recorded as
`SecurityRecord` events, in batches, with how many times each happened in the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.agent import Agent
from domain.collaboration import Collaboration
from domain.collaboration_run import CollaborationRun
from domain.execution import Execution
from domain.experiment import Experiment
from domain.migration import Migration
from domain.platform_config import PlatformConfig
from domain.retention import RetentionSweep
from domain.tenant import Tenant

PLATFORM = "_platform"  # the trail of platform changes (configuration, master key), not a tenant's

Detail = Callable[[Any], dict[str, Any]]


class SecurityRecord(Aggregate):
    """Refusals seen by one ingress replica in one flush interval."""

    @event("Created")
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries


def _fields(*names: str) -> Detail:
    return lambda e: {n: getattr(e, n, None) for n in names}


def _experiment(definition: dict[str, Any], sources: list[str]) -> dict[str, Any]:
    variants = [v.get("name") for v in definition.get("variants", [])]
    return {"name": definition.get("name"), "sources": len(sources), "variants": variants}


def _definition(definition: dict[str, Any]) -> dict[str, Any]:
    steps = [s.get("id") for s in definition.get("steps", [])]
    return {"name": definition.get("name"), "steps": steps, "output": definition.get("output")}


# event class → (kind, what of it goes into the entry's detail); never a secret or a hash
AUDITED: dict[type, tuple[str, Detail]] = {
    Tenant.Created: ("tenant.created", _fields("name")),
    Tenant.ApiKeyIssued: ("api_key.issued", _fields("key_id", "hint", "scopes", "expires_at")),
    Tenant.ApiKeyRevoked: ("api_key.revoked", _fields("key_id")),
    Tenant.LimitsSet: ("limits.set", _fields("limits")),
    Tenant.ModelMappingSet: ("model_mapping.set", _fields("name", "mapping")),
    Tenant.ModelMappingRemoved: ("model_mapping.removed", _fields("name")),
    Tenant.ModelPolicySet: ("model_policy.set", _fields("policy")),
    Tenant.OwnProviderKeySet: ("provider_key.set", _fields("provider", "hint")),
    Tenant.OwnProviderKeyRemoved: ("provider_key.removed", _fields("provider")),
    Tenant.ProviderCredentialStored: ("provider_credential.stored", _fields("provider_type")),
    Tenant.McpServerRegistered: (
        "mcp_server.registered",
        lambda e: {k: e.server.get(k) for k in ("id", "name", "transport", "command")},
    ),
    Tenant.McpServerRemoved: ("mcp_server.removed", _fields("server_id")),
    Tenant.BudgetSet: ("budget.set", _fields("scope", "budget")),
    Tenant.BudgetRemoved: ("budget.removed", _fields("scope")),
    Tenant.BudgetThresholdCrossed: (
        "budget.threshold_crossed",
        _fields("scope", "threshold", "period_start", "spent_usd", "limit_usd"),
    ),
    Tenant.StateAgentConfigured: (
        "state_agent_config.created",
        lambda e: {k: e.config.get(k) for k in ("id", "state_id", "agent_id", "enabled")},
    ),
    Tenant.StateAgentConfigRemoved: ("state_agent_config.removed", _fields("config_id")),
    Tenant.CacheCleared: ("cache.cleared", _fields("entries")),
    Tenant.RetentionSet: ("retention.set", _fields("retention")),
    Tenant.JudgeSet: ("judge.set", _fields("judge")),
    Tenant.SubjectErased: ("subject.erased", _fields("subject_ref", "executions", "keys")),
    RetentionSweep.Recorded: (
        "retention.swept",
        _fields("payload_keys_before", "payload_keys", "executions_before", "executions"),
    ),
    Experiment.Started: ("experiment.started", lambda e: _experiment(e.definition, e.sources)),
    Experiment.Ended: ("experiment.ended", _fields("status", "stopped")),
    Collaboration.Created: ("collaboration.created", lambda e: _definition(e.definition)),
    Collaboration.Updated: ("collaboration.updated", lambda e: _definition(e.definition)),
    Collaboration.Deleted: ("collaboration.deleted", lambda e: {}),
    CollaborationRun.Started: (
        "collaboration_run.started",
        lambda e: {"name": e.definition.get("name"), "collaboration_id": e.collaboration_id,
                   "version": e.version, "inputs": e.inputs},
    ),
    CollaborationRun.StepStarted: (
        "collaboration_run.step_started", _fields("step_id", "attempt", "execution_id", "input")
    ),
    CollaborationRun.StepCompleted: (
        "collaboration_run.step_completed", _fields("step_id", "execution_id", "output", "usage")
    ),
    CollaborationRun.StepFailed: (
        "collaboration_run.step_failed", _fields("step_id", "execution_id", "error", "final")
    ),
    CollaborationRun.StepSkipped: ("collaboration_run.step_skipped", _fields("step_id", "reason")),
    CollaborationRun.Ended: ("collaboration_run.ended", _fields("status", "output", "error")),
    Migration.Started: ("migration.started", _fields("source", "model_map", "planned")),
    Migration.RolledBack: ("migration.rolled_back", _fields("removed")),
    Execution.GuardrailsApplied: ("guardrail.fired", _fields("stage", "decisions")),
    Execution.AttemptRestarted: ("execution.attempt_restarted", _fields("attempt", "reason")),
    Agent.Created: ("agent.created", lambda e: {"name": e.definition.get("name")}),
    Agent.Updated: ("agent.updated", lambda e: {"fields": sorted(e.changes)}),
    Agent.Deleted: ("agent.deleted", lambda e: {}),
    # the platform's own trail (tenant `PLATFORM`), read by the platform admin
    PlatformConfig.VirtualModelSet: ("config.virtual_model.set", _fields("name", "definition")),
    PlatformConfig.VirtualModelRemoved: ("config.virtual_model.removed", _fields("name")),
    PlatformConfig.ProviderSettingsSet: ("config.provider.set", _fields("name", "settings")),
    PlatformConfig.IngressSet: ("config.ingress.set", _fields("settings")),
    PlatformConfig.FileReloaded: ("config.reloaded", _fields("digest")),
}

SECURITY_KINDS = ("authentication_failed", "permission_denied", "cross_tenant_attempt")
OUTLIVES_TENANT = ("data.erased",)  # kept after the tenant is gone: the proof of erasure
PLATFORM_KINDS = ("master_key.rotated",)  # recorded as security records, on the platform trail


FROM = " from "  # joins who acted and their address in a change's `by`


def recorded_by(actor: str, source: str | None) -> str:
    """`by` as a change records it: who acted, and from which address when known."""
    return f"{actor}{FROM}{source}" if source else actor


def split_by(by: str | None) -> tuple[str | None, str | None]:
    """`by` back into who acted and from where."""
    if by is None:
        return None, None
    actor, joined, source = by.rpartition(FROM)
    return (actor, source) if joined else (by, None)


def entry_of(event: Any) -> dict[str, Any] | None:
    """The audit entry a domain event stands for, or None if it is not audited."""
    found = AUDITED.get(type(event))
    if found is None:
        return None
    kind, detail = found
    # the agent, the execution (a guardrail fired in, restarted), or the migration
    targeted = kind.startswith(
        ("agent.", "guardrail.", "execution.", "migration.", "collaboration")
    )
    target = str(event.originator_id) if targeted else None
    actor, source = split_by(getattr(event, "by", None))
    return {
        "tenant_id": getattr(event, "tenant_id", PLATFORM),
        "at": event.timestamp.timestamp(),
        "kind": kind,
        "actor": actor,
        "target": target,
        "detail": detail(event),
        "source": source,
        "count": 1,
    }
