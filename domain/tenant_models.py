"""A tenant's own model policy: its virtual-name mappings, allow-list, parameter defaults/caps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.config import Config, VirtualModel


@dataclass
class TenantModelPolicy:
    mappings: dict[str, VirtualModel] = field(default_factory=dict)
    allowed_models: frozenset[str] | None = None  # None: every config model
    parameter_defaults: dict[str, Any] = field(default_factory=dict)
    parameter_caps: dict[str, float] = field(default_factory=dict)
    cache: dict[str, Any] | None = None  # the tenant's default `cache`
    guardrails: dict[str, Any] | None = None  # checks run before any agent's own

    @classmethod
    def of(cls, mappings: dict[str, dict[str, Any]], policy: dict[str, Any]) -> TenantModelPolicy:
        """From the Tenant aggregate's recorded state."""
        allowed = policy.get("allowed_models")
        return cls(
            mappings={n: VirtualModel.model_validate(m) for n, m in mappings.items()},
            allowed_models=frozenset(allowed) if allowed is not None else None,
            parameter_defaults=dict(policy.get("parameter_defaults") or {}),
            parameter_caps=dict(policy.get("parameter_caps") or {}),
            cache=policy.get("cache"),
            guardrails=policy.get("guardrails"),
        )

    def virtual_models(self, config: Config) -> Mapping[str, VirtualModel]:
        """The names this tenant resolves: the platform's, with its own mappings over them."""
        if not self.mappings:
            return config.virtual_models
        return {**config.virtual_models, **self.mappings}

    def parameters(self, requested: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Defaults under the agent's and request's parameters, then the caps; and what was
        capped."""
        merged = {**self.parameter_defaults, **requested}
        capped: dict[str, Any] = {}
        for name, cap in self.parameter_caps.items():
            value = merged.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap:
                merged[name] = type(value)(cap)
                capped[name] = merged[name]
        return merged, capped


def mapping_problems(name: str, mapping: dict[str, Any], config: Config) -> list[str]:
    """Why a tenant mapping cannot be accepted, each with its path; empty when it can."""
    problems = []
    if name in config.models:
        problems.append(f"name: {name!r} is a concrete model; a mapping cannot shadow it")
    for i, candidate in enumerate(mapping.get("candidates", [])):
        if candidate not in config.models:
            problems.append(f"candidates[{i}]: unknown model {candidate!r}")
    return problems
