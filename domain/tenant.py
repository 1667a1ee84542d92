"""The Tenant aggregate: a customer company, its API keys and its agents."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, NotFound


class Tenant(Aggregate):
    """A tenant; every event carries `tenant_id` so projections can filter on it.

    Commands check their own preconditions (raising `NotFound` or `Conflict`) before the
    event, so a refused command records nothing.
    """

    @event("Created")
    def __init__(  # `by`: who and from where (None in events written before it was kept)
        self,
        id: UUID,  # noqa: A002
        tenant_id: str,
        name: str,
        by: str | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.name = name
        self.api_keys: dict[str, dict[str, Any]] = {}
        self.agent_ids: list[str] = []
        self.legacy_agent_credentials: dict[str, dict[str, str]] = {}  # legacy GraphQL apiKey
        self.own_provider_keys: dict[str, dict[str, str]] = {}
        self.mcp_servers: dict[str, dict[str, Any]] = {}
        self.model_mappings: dict[str, dict[str, Any]] = {}
        self.model_policy: dict[str, Any] = {}
        self.limits: dict[str, Any] = {}
        self.budgets: dict[str, dict[str, Any]] = {}  # scope → `Budget` as a dict
        # scope → {"period_start": ISO 8601, "thresholds": [crossed in that period]}
        self.budget_crossings: dict[str, dict[str, Any]] = {}
        self.state_agent_configs: dict[str, dict[str, Any]] = {}  # id → config (legacy GraphQL)
        self.retention: dict[str, Any] | None = None  # `domain.retention.Retention` as a dict
        self.judge: dict[str, Any] | None = None  # the default `domain.judging.JudgeSpec`
        self.running_experiments: list[str] = []  # resumed when the tenant's actor starts
        self.experiment_ids: list[str] = []  # every experiment, oldest first
        self.collaboration_ids: list[str] = []  # saved collaborations, oldest first
        self.running_collaboration_runs: list[str] = []  # resumed when the actor starts

    def issue_api_key(
        self,
        key_id: str,
        key_hash: str,
        hint: str,
        scopes: list[str],
        expires_at: float | None,
        by: str | None = None,
    ) -> None:
        self._api_key_issued(self.tenant_id, key_id, key_hash, hint, scopes, expires_at, by)

    @event("ApiKeyIssued")
    def _api_key_issued(
        self,
        tenant_id: str,
        key_id: str,
        key_hash: str,
        hint: str,
        scopes: list[str],
        expires_at: float | None,
        by: str | None = None,
    ) -> None:
        self.api_keys[key_id] = {
            "key_hash": key_hash,
            "hint": hint,
            "scopes": scopes,
            "expires_at": expires_at,
            "revoked": False,
        }

    def revoke_api_key(self, key_id: str, by: str) -> None:
        key = self.api_keys.get(key_id)
        if key is None or key["revoked"]:
            raise NotFound(f"API key {key_id} not found (or already revoked)")
        self._api_key_revoked(self.tenant_id, key_id, by)

    @event("ApiKeyRevoked")
    def _api_key_revoked(self, tenant_id: str, key_id: str, by: str) -> None:
        self.api_keys[key_id]["revoked"] = True

    def set_limits(self, limits: dict[str, Any], by: str) -> None:
        """The tenant's own limits, over the configured tenant defaults."""
        self._limits_set(self.tenant_id, limits, by)

    @event("LimitsSet")
    def _limits_set(self, tenant_id: str, limits: dict[str, Any], by: str) -> None:
        self.limits = limits

    def set_budget(self, scope: str, budget: dict[str, Any], by: str) -> None:
        """A spending budget for `tenant` or `agent:<id>`; a changed budget alerts afresh."""
        self._budget_set(self.tenant_id, scope, budget, by)

    @event("BudgetSet")
    def _budget_set(self, tenant_id: str, scope: str, budget: dict[str, Any], by: str) -> None:
        if self.budgets.get(scope) != budget:
            self.budget_crossings.pop(scope, None)
        self.budgets[scope] = budget

    def remove_budget(self, scope: str, by: str) -> None:
        if scope not in self.budgets:
            raise NotFound(f"no budget for {scope!r}")
        self._budget_removed(self.tenant_id, scope, by)

    @event("BudgetRemoved")
    def _budget_removed(self, tenant_id: str, scope: str, by: str) -> None:
        self.budgets.pop(scope, None)
        self.budget_crossings.pop(scope, None)

    def cross_budget_threshold(
        self, scope: str, threshold: float, period_start: str, spent_usd: float, limit_usd: float
    ) -> None:
        """The scope's spending reached `threshold` of its limit in the period starting at
        `period_start` (ISO 8601 UTC)."""
        self._budget_threshold_crossed(
            self.tenant_id, scope, threshold, period_start, spent_usd, limit_usd
        )

    @event("BudgetThresholdCrossed")
    def _budget_threshold_crossed(
        self,
        tenant_id: str,
        scope: str,
        threshold: float,
        period_start: str,
        spent_usd: float,
        limit_usd: float,
    ) -> None:
        known = self.budget_crossings.get(scope)
        crossed = known["thresholds"] if known and known["period_start"] == period_start else []
        self.budget_crossings[scope] = {
            "period_start": period_start,
            "thresholds": [*crossed, threshold],
        }

    def add_agent(self, agent_id: str) -> None:
        self._agent_added(self.tenant_id, agent_id)

    @event("AgentAdded")
    def _agent_added(self, tenant_id: str, agent_id: str) -> None:
        self.agent_ids.append(agent_id)

    def remove_agent(self, agent_id: str) -> None:
        if agent_id not in self.agent_ids:
            raise NotFound(f"agent {agent_id} not found")
        self._agent_removed(self.tenant_id, agent_id)

    @event("AgentRemoved")
    def _agent_removed(self, tenant_id: str, agent_id: str) -> None:
        self.agent_ids.remove(agent_id)

    def store_legacy_agent_credential(
        self, provider_type: str, ciphertext: str, hint: str, by: str | None = None
    ) -> None:
        """Keep the apiKey a legacy GraphQL `createAgent` sent, encrypted (the clear text
        never enters an event), as the tenant's key for the provider `provider_type` names
        (a REST-set own key wins; see `TenantCommands._adopt`)."""
        self._provider_credential_stored(self.tenant_id, provider_type, ciphertext, hint, by)

    @event("ProviderCredentialStored")
    def _provider_credential_stored(
        self, tenant_id: str, provider_type: str, ciphertext: str, hint: str, by: str | None = None
    ) -> None:
        self.legacy_agent_credentials[provider_type] = {"ciphertext": ciphertext, "hint": hint}

    def set_own_provider_key(self, provider: str, ciphertext: str, hint: str, by: str) -> None:
        """The tenant's own key for a platform provider, encrypted (never in clear here)."""
        self._own_provider_key_set(self.tenant_id, provider, ciphertext, hint, by)

    @event("OwnProviderKeySet")
    def _own_provider_key_set(
        self, tenant_id: str, provider: str, ciphertext: str, hint: str, by: str
    ) -> None:
        self.own_provider_keys[provider] = {"ciphertext": ciphertext, "hint": hint}

    def remove_own_provider_key(self, provider: str, by: str) -> None:
        if provider not in self.own_provider_keys:
            raise NotFound(f"this tenant has no key for {provider!r}")
        self._own_provider_key_removed(self.tenant_id, provider, by)

    @event("OwnProviderKeyRemoved")
    def _own_provider_key_removed(self, tenant_id: str, provider: str, by: str) -> None:
        self.own_provider_keys.pop(provider, None)

    def set_model_mapping(self, name: str, mapping: dict[str, Any], by: str) -> None:
        self._model_mapping_set(self.tenant_id, name, mapping, by)

    @event("ModelMappingSet")
    def _model_mapping_set(
        self, tenant_id: str, name: str, mapping: dict[str, Any], by: str
    ) -> None:
        self.model_mappings[name] = mapping

    def remove_model_mapping(self, name: str, by: str) -> None:
        if name not in self.model_mappings:
            raise NotFound(f"this tenant has no mapping for {name!r}")
        self._model_mapping_removed(self.tenant_id, name, by)

    @event("ModelMappingRemoved")
    def _model_mapping_removed(self, tenant_id: str, name: str, by: str) -> None:
        self.model_mappings.pop(name, None)

    def set_model_policy(self, policy: dict[str, Any], by: str) -> None:
        self._model_policy_set(self.tenant_id, policy, by)

    @event("ModelPolicySet")
    def _model_policy_set(self, tenant_id: str, policy: dict[str, Any], by: str) -> None:
        self.model_policy = policy

    def record_cache_cleared(self, entries: int, by: str) -> None:
        """The tenant's response cache was emptied (`entries` answers went)."""
        self._cache_cleared(self.tenant_id, entries, by)

    @event("CacheCleared")
    def _cache_cleared(self, tenant_id: str, entries: int, by: str) -> None:
        pass

    def register_mcp_server(self, server: dict[str, Any], sealed_secrets: str, by: str) -> None:
        """An MCP server of this tenant; its environment and headers only as ciphertext."""
        if any(s["name"] == server["name"] for s in self.mcp_servers.values()):
            raise Conflict(f"an MCP server named {server['name']!r} is already registered")
        self._mcp_server_registered(self.tenant_id, server, sealed_secrets, by)

    @event("McpServerRegistered")
    def _mcp_server_registered(
        self, tenant_id: str, server: dict[str, Any], sealed_secrets: str, by: str
    ) -> None:
        self.mcp_servers[server["id"]] = {**server, "sealed_secrets": sealed_secrets}

    def remove_mcp_server(self, server_id: str, by: str) -> None:
        if server_id not in self.mcp_servers:
            raise NotFound(f"MCP server {server_id} not found")
        self._mcp_server_removed(self.tenant_id, server_id, by)

    @event("McpServerRemoved")
    def _mcp_server_removed(self, tenant_id: str, server_id: str, by: str) -> None:
        self.mcp_servers.pop(server_id, None)

    def configure_state_agent(self, config: dict[str, Any], by: str | None = None) -> None:
        """Bind an agent to a workflow state (`domain.state_agents`); `config["id"]` is new."""
        if config["id"] in self.state_agent_configs:
            raise Conflict(f"state agent configuration {config['id']} already exists")
        self._state_agent_configured(self.tenant_id, config, by)

    @event("StateAgentConfigured")
    def _state_agent_configured(
        self, tenant_id: str, config: dict[str, Any], by: str | None = None
    ) -> None:
        self.state_agent_configs[config["id"]] = config

    def remove_state_agent_config(self, config_id: str, by: str | None = None) -> None:
        if config_id not in self.state_agent_configs:
            raise NotFound(f"state agent configuration {config_id} not found")
        self._state_agent_config_removed(self.tenant_id, config_id, by)

    @event("StateAgentConfigRemoved")
    def _state_agent_config_removed(
        self, tenant_id: str, config_id: str, by: str | None = None
    ) -> None:
        self.state_agent_configs.pop(config_id, None)

    def set_retention(self, retention: dict[str, Any] | None, by: str | None = None) -> None:
        """Keep payloads (and metrics) for a while only; None keeps everything."""
        self._retention_set(self.tenant_id, retention, by)

    @event("RetentionSet")
    def _retention_set(
        self, tenant_id: str, retention: dict[str, Any] | None, by: str | None = None
    ) -> None:
        self.retention = retention

    def set_judge(self, judge: dict[str, Any] | None, by: str | None = None) -> None:
        """The judge of executions whose agent names none (None: no default judge)."""
        self._judge_set(self.tenant_id, judge, by)

    @event("JudgeSet")
    def _judge_set(
        self, tenant_id: str, judge: dict[str, Any] | None, by: str | None = None
    ) -> None:
        self.judge = judge

    def open_experiment(self, experiment_id: str) -> None:
        """A replay experiment started (`domain.experiment`): it runs until it ends."""
        self._experiment_opened(self.tenant_id, experiment_id)

    @event("ExperimentOpened")
    def _experiment_opened(self, tenant_id: str, experiment_id: str) -> None:
        self.running_experiments.append(experiment_id)
        self.experiment_ids.append(experiment_id)

    def close_experiment(self, experiment_id: str) -> None:
        self._experiment_closed(self.tenant_id, experiment_id)

    @event("ExperimentClosed")
    def _experiment_closed(self, tenant_id: str, experiment_id: str) -> None:
        if experiment_id in self.running_experiments:
            self.running_experiments.remove(experiment_id)

    def add_collaboration(self, collaboration_id: str) -> None:
        """A collaboration was saved (`domain.collaboration`)."""
        self._collaboration_added(self.tenant_id, collaboration_id)

    @event("CollaborationAdded")
    def _collaboration_added(self, tenant_id: str, collaboration_id: str) -> None:
        self.collaboration_ids = [*getattr(self, "collaboration_ids", []), collaboration_id]

    def remove_collaboration(self, collaboration_id: str) -> None:
        self._collaboration_removed(self.tenant_id, collaboration_id)

    @event("CollaborationRemoved")
    def _collaboration_removed(self, tenant_id: str, collaboration_id: str) -> None:
        self.collaboration_ids = [
            i for i in getattr(self, "collaboration_ids", []) if i != collaboration_id
        ]

    def open_collaboration_run(self, run_id: str) -> None:
        """A collaboration run started (`domain.collaboration_run`): it runs until it ends."""
        self._collaboration_run_opened(self.tenant_id, run_id)

    @event("CollaborationRunOpened")
    def _collaboration_run_opened(self, tenant_id: str, run_id: str) -> None:
        self.running_collaboration_runs = [*getattr(self, "running_collaboration_runs", []),
                                           run_id]  # fmt: skip

    def close_collaboration_run(self, run_id: str) -> None:
        self._collaboration_run_closed(self.tenant_id, run_id)

    @event("CollaborationRunClosed")
    def _collaboration_run_closed(self, tenant_id: str, run_id: str) -> None:
        self.running_collaboration_runs = [
            i for i in getattr(self, "running_collaboration_runs", []) if i != run_id
        ]

    def record_subject_erased(
        self, subject_ref: str, executions: int, keys: int, by: str | None = None
    ) -> None:
        """A data subject's payload was erased (its keys destroyed): who, and how much."""
        self._subject_erased(self.tenant_id, subject_ref, executions, keys, by)

    @event("SubjectErased")
    def _subject_erased(
        self, tenant_id: str, subject_ref: str, executions: int, keys: int, by: str | None = None
    ) -> None:
        pass

    def as_api(self) -> dict[str, Any]:
        """The tenant as the API shows it."""
        return {"id": self.tenant_id, "name": self.name, "created_at": self.created_on.isoformat()}
