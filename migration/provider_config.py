"""`cb migrate config`: the legacy `llmProviders` (from a running legacy server or a file) as
this project's configuration: `providers` and `models` sections, checked with the same rules
as `cb validate-config`. Keys are never carried over: each provider names an environment
variable for its key, which the operator sets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from domain.config_check import config_problems

TYPES = {"openai": "openai", "anthropic": "anthropic", "azure": "azure_openai",
         "azure_openai": "azure_openai", "ollama": "ollama", "google": "gemini",
         "gemini": "gemini"}  # fmt: skip
CAPABILITIES = {"chat", "tools", "streaming", "vision", "json_mode", "reasoning"}


def _name(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "provider"


def config_from_providers(
    providers: list[Mapping[str, Any]],
) -> tuple[dict[str, Any], list[str]]:
    """The configuration the legacy providers stand for, and notes on what was not carried
    over (a provider type this project has no codec for, say)."""
    config: dict[str, Any] = {"providers": {}, "models": {}}
    notes = []
    for provider in providers:
        kind = TYPES.get(str(provider.get("providerType", "")).lower())
        name = _name(str(provider.get("name") or provider.get("providerType") or "provider"))
        if kind is None:
            notes.append(
                f"provider {provider.get('name')!r}: type {provider.get('providerType')!r} has"
                f" no codec here ({', '.join(sorted(set(TYPES.values())))}); left out"
            )
            continue
        keyed = kind != "ollama"
        env = f"{re.sub(r'[^A-Z0-9]+', '_', name.upper())}_API_KEY"
        config["providers"][name] = {"type": kind, "base_url": provider.get("baseUrl")}
        config["providers"][name] |= {"api_key_env": env} if keyed else {"requires_api_key": False}
        notes.append(
            f"provider {name}: set {env} to its key (legacy keys are not carried over)"
            if keyed
            else f"provider {name}: takes no key"
        )
        for model in provider.get("models") or []:
            model_id = str(model["id"])
            capabilities = {"chat"} | (set(model.get("capabilities") or []) & CAPABILITIES)
            if model.get("supportsStreaming"):
                capabilities.add("streaming")
            if model.get("supportsFunctionCalling"):
                capabilities.add("tools")
            config["models"][model_id] = {
                "provider": name,
                "context_window": int(model.get("contextWindow") or 4096),
                "max_output_tokens": int(model.get("maxTokens") or 1024),
                "capabilities": sorted(capabilities),
                "input_price_per_mtok": round(float(model.get("costPerInputToken") or 0) * 1e6, 6),
                "output_price_per_mtok": round(
                    float(model.get("costPerOutputToken") or 0) * 1e6, 6
                ),
            }
    return config, notes


def render(config: dict[str, Any], notes: list[str]) -> tuple[str, list[str]]:
    """The configuration as YAML with the notes as comments, and its problems (none when
    `cb validate-config` would accept it)."""
    header = "".join(f"# {note}\n" for note in notes)
    text = header + yaml.safe_dump(config, sort_keys=False)
    return text, config_problems(config)
