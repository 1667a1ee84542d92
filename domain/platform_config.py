"""Platform configuration changed at runtime: the operators' changes, as events.

The effective configuration is the file (`CB_CONFIG`) with these changes laid over it in
order; a change or a reload that would make it invalid is refused before it is recorded.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from eventsourcing.domain import Aggregate, event

NAMESPACE = uuid.UUID("6f1d3c52-64a4-4c55-9d0c-2f7e3b1a9c40")


def config_id(instance: str) -> uuid.UUID:
    """The one PlatformConfig aggregate of a deployment."""
    return uuid.uuid5(NAMESPACE, f"platform-config:{instance}")


class PlatformConfig(Aggregate):
    """Virtual-model, provider-setting and ingress overrides, with who made each change."""

    @event("Created")
    def __init__(self, id: uuid.UUID) -> None:  # noqa: A002
        self.virtual_models: dict[str, dict[str, Any] | None] = {}  # None: removed
        self.providers: dict[str, dict[str, Any]] = {}
        self.ingress: dict[str, Any] = {}
        self.file_digest: str | None = None

    @event("VirtualModelSet")
    def set_virtual_model(self, name: str, definition: dict[str, Any], by: str) -> None:
        self.virtual_models[name] = definition

    @event("VirtualModelRemoved")
    def remove_virtual_model(self, name: str, by: str) -> None:
        self.virtual_models[name] = None

    @event("ProviderSettingsSet")
    def set_provider_settings(self, name: str, settings: dict[str, Any], by: str) -> None:
        self.providers[name] = {**self.providers.get(name, {}), **settings}

    @event("IngressSet")
    def set_ingress(self, settings: dict[str, Any], by: str) -> None:
        self.ingress = {**self.ingress, **settings}

    @event("FileReloaded")
    def file_reloaded(self, digest: str, by: str) -> None:
        self.file_digest = digest


def overlay(
    base: dict[str, Any],
    virtual_models: dict[str, dict[str, Any] | None],
    providers: dict[str, dict[str, Any]],
    ingress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The file's data with the overrides applied (a new mapping; `base` is untouched)."""
    data = copy.deepcopy(base)
    names = data.setdefault("virtual_models", {})
    for name, definition in virtual_models.items():
        if definition is None:
            names.pop(name, None)
        else:
            names[name] = definition
    for name, settings in providers.items():
        if name in data.get("providers", {}):
            data["providers"][name] = {**data["providers"][name], **settings}
    if ingress:
        data["ingress"] = {**data.get("ingress", {}), **ingress}
    return data
