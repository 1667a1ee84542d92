"""Provider codecs: pure functions between the unified model and each provider's wire format."""

from __future__ import annotations

from types import ModuleType

from domain.codecs import anthropic_messages, azure_openai, gemini, ollama_chat, openai_chat

CODECS: dict[str, ModuleType] = {
    "openai": openai_chat,
    "anthropic": anthropic_messages,
    "azure_openai": azure_openai,
    "ollama": ollama_chat,
    "gemini": gemini,
}


def codec_for(provider_type: str) -> ModuleType:
    """The codec module for a provider type: `build_call`, `parse_response`,
    `parse_stream_line` (a chunk marked `last` ends the stream), and `map_error`."""
    return CODECS[provider_type]
