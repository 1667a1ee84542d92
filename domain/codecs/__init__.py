"""Provider codecs: pure functions between the unified model and each provider's wire format."""

from __future__ import annotations

from domain.codecs import anthropic_messages, azure_openai, gemini, ollama_chat, openai_chat
from domain.codecs.base import Codec

CODECS: dict[str, Codec] = {
    "openai": openai_chat,
    "anthropic": anthropic_messages,
    "azure_openai": azure_openai,
    "ollama": ollama_chat,
    "gemini": gemini,
}
"""The codec module of each provider `type` of the configuration."""


def codec_for(provider_type: str) -> Codec:
    """The codec for a provider type (the module itself, typed as the `Codec` Protocol)."""
    return CODECS[provider_type]


__all__ = ["CODECS", "Codec", "codec_for"]
