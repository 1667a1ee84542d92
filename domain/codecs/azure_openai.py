"""Azure OpenAI: OpenAI's chat completions at a deployment URL, keyed by `api-key`."""

from __future__ import annotations

from urllib.parse import quote

from domain.codecs import openai_chat
from domain.config import ModelSpec, ProviderSpec
from domain.llm import HttpCall, LLMRequest
from domain.parameters import FilteredParameters

DEFAULT_API_VERSION = "2024-10-21"  # the GA data-plane version
parse_response = openai_chat.parse_response
parse_stream_line = openai_chat.parse_stream_line
map_error = openai_chat.map_error


def build_call(
    request: LLMRequest,
    model: ModelSpec,
    wire_model: str,
    api_key: str | None,
    provider: ProviderSpec | None = None,
) -> tuple[HttpCall, FilteredParameters]:
    """The OpenAI body, posted to `/openai/deployments/{deployment}/chat/completions`.

    The config's `provider_model` names the deployment; `api_version` comes from the
    provider entry.
    """
    call, params = openai_chat.build_call(request, model, wire_model, None)
    version = (provider.api_version if provider else None) or DEFAULT_API_VERSION
    body = {k: v for k, v in call.body.items() if k != "model"}  # the URL names the deployment
    headers = {"content-type": "application/json"}
    if api_key:
        headers["api-key"] = api_key
    path = (
        f"/openai/deployments/{quote(wire_model, safe='')}/chat/completions"
        f"?api-version={quote(version, safe='')}"
    )
    return HttpCall(path=path, headers=headers, body=body), params
