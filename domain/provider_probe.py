"""A provider's health check: the cheapest authenticated request it answers (listing its
models), built per provider type; no I/O here."""

from __future__ import annotations

from domain.codecs.anthropic_messages import API_VERSION as ANTHROPIC_VERSION
from domain.config import ProviderSpec

CHECK_MODEL = "health-check"  # the name a check's outcome is reported under (not a model)


def probe_request(spec: ProviderSpec, api_key: str | None) -> tuple[str, dict[str, str]]:
    """The path (after the base URL) and headers of a GET that lists the provider's models."""
    key = api_key or ""
    if spec.type == "openai":
        return "/models", {"authorization": f"Bearer {key}"} if key else {}
    if spec.type == "azure_openai":
        return f"/openai/models?api-version={spec.api_version or ''}", {"api-key": key}
    if spec.type == "anthropic":
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["authorization"] = f"Bearer {key}"  # as the official SDK sends it
        return "/v1/models", headers
    if spec.type == "gemini":
        return f"/{spec.api_version or 'v1beta'}/models", {"x-goog-api-key": key}
    return "/api/tags", {"authorization": f"Bearer {key}"} if key else {}  # ollama
