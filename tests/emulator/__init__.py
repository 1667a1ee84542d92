"""In-process emulator of five LLM providers' HTTP APIs: OpenAI chat completions, Azure
OpenAI, Anthropic Messages, Gemini generateContent and Ollama's native chat.

It speaks the real wire formats (JSON bodies, each provider's streams, each provider's error
objects), so the official ``openai``, ``anthropic``, ``google-genai`` and ``ollama`` clients
and the gateway's own upstream client talk to it unchanged, and it answers by rules a test
scripts (``ProviderEmulator.script``). ``server.py`` is the HTTP server, ``rules.py`` the
scripting rules, and one module per dialect reads requests and writes replies.
"""

from tests.emulator.server import ProviderEmulator, RecordedRequest, main

__all__ = ["ProviderEmulator", "RecordedRequest", "main"]
