"""`llmChatCompletion` (a real completion, recorded as an execution) and
`configureLlmProvider` (the platform admin's runtime provider configuration)."""

from __future__ import annotations

import hmac
import json
import os
import re
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from api.admission import admission_of
from api.auth import Principal, admin_token
from api.graphql.context import runtime, tenant, who
from api.graphql.deprecation import deprecated
from api.graphql.legacy_types import LlmProviderGQL, provider_to_gql
from api.graphql.llm_types import (
    LlmChatCompletionInput,
    LlmProviderConfigInput,
    LlmResponseGQL,
    chat_request,
    response_of,
)
from api.graphql.providers import _configured_at
from api.provider_views import provider_views
from api.runtime import Runtime
from api.streaming import Opened, sse_events
from domain.audit import recorded_by
from domain.errors import CBError, InvalidRequest, NotFound, PermissionDenied
from domain.model_listing import provider_models

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
STREAM_HEARTBEAT_S = 3600.0  # the resolver reads the stream itself: no heartbeats wanted


@strawberry.type
class LlmMutations:
    @strawberry.mutation(deprecation_reason=deprecated("Mutation.llmChatCompletion"))
    async def llm_chat_completion(
        self,
        info: Info,
        input: LlmChatCompletionInput,  # noqa: A002
    ) -> LlmResponseGQL:
        """A real completion through virtual model resolution, as `POST /v1/chat/completions`
        runs it: an execution of kind `chat_completion` under the tenant's limits and budgets.
        With `stream: true` it runs streamed (its chunks replayable with `llmStream(id)`) and
        the whole answer is returned when it ends."""
        caller = who(info)
        caller.require("agents:execute")
        body = chat_request(input)
        job = body.as_job()
        execution_id = str(uuid.uuid4())
        rt = runtime(info)
        client = tenant(info, caller)
        admission = await admission_of(info.context["request"])
        async with admission.admitted(caller.tenant_id, rt.config().ingress):
            if input.stream:
                opened = await client.complete_chat_stream(job, body.agent_id(), execution_id, True)
                await _drain(opened)
                result = await _ended(rt, caller.tenant_id, execution_id)
            else:
                result = (await client.complete_chat(job, body.agent_id(), execution_id)).value
        return response_of(result)

    @strawberry.mutation
    async def configure_llm_provider(
        self,
        info: Info,
        input: LlmProviderConfigInput,  # noqa: A002
    ) -> LlmProviderGQL:
        """Platform admin only: point a configured provider at `baseUrl` with the key named
        by `apiKeyId` (an environment variable of the gateway, as the configuration names
        keys), through the runtime configuration (recorded, seen by every replica)."""
        request = info.context["request"]
        if not is_platform_admin(request.headers.get("authorization")):
            raise PermissionDenied(
                "configureLlmProvider is for the platform admin (Authorization: Bearer "
                "<CB_ADMIN_TOKEN>); a tenant sets its own provider key with PUT "
                "/api/v1/tenants/{tenant_id}/provider-credentials/{provider}"
            )
        rt = runtime(info)
        config = rt.config()
        spec = config.providers.get(input.name)
        if spec is None:
            raise NotFound(
                f"provider {input.name!r} is not configured; providers are added in the "
                f"configuration file: {', '.join(sorted(config.providers))}"
            )
        changes = provider_changes(input, spec.type, provider_models(config, input.name))
        by = recorded_by("platform-admin", request.client.host if request.client else None)
        await rt.config_actor.set_provider(input.name, changes, by)
        found = await provider_views(rt, input.name)
        if not found:
            raise InvalidRequest(f"provider {input.name!r} has no credential after the change")
        return provider_to_gql(found[0], _configured_at(rt))


# the caller the context gives the platform admin: no tenant, no tenant scope
PLATFORM_ADMIN = Principal(tenant_id="", key_id="platform-admin", scopes=frozenset())


def is_platform_admin(authorization: str | None) -> bool:
    """Whether the bearer token is the platform admin's (`CB_ADMIN_TOKEN`)."""
    expected = admin_token()
    scheme, _, token = (authorization or "").partition(" ")
    return (
        bool(expected)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.encode())
    )


def provider_changes(
    data: LlmProviderConfigInput, configured_type: str, models: list[dict[str, Any]]
) -> dict[str, Any]:
    """The runtime settings a legacy provider configuration stands for: the endpoint (the
    environment's override of it dropped, so it takes effect) and the key's variable name.
    The type cannot change; `models` must be the provider's catalog models as configured
    (the catalog changes in the configuration file)."""
    if data.provider_type != configured_type:
        raise InvalidRequest(
            f"providerType {data.provider_type!r} is not {data.name!r}'s type "
            f"({configured_type!r}); a provider's type cannot change at runtime",
            details={"param": "providerType"},
        )
    if not data.base_url.startswith(("http://", "https://")):
        raise InvalidRequest("baseUrl must be an http(s) URL", details={"param": "baseUrl"})
    if not ENV_NAME.match(data.api_key_id):
        raise InvalidRequest(
            "apiKeyId names the environment variable that holds the key (e.g. OPENAI_API_KEY)",
            details={"param": "apiKeyId"},
        )
    if not os.environ.get(data.api_key_id):
        raise InvalidRequest(
            f"apiKeyId {data.api_key_id!r}: no such variable is set on the gateway",
            details={"param": "apiKeyId"},
        )
    catalog = {m["id"]: m for m in models}
    for i, model in enumerate(data.models):
        known = catalog.get(model.id)
        if known is None:
            raise InvalidRequest(
                f"models[{i}]: {model.id!r} is not a model of {data.name!r} in the catalog "
                f"({', '.join(catalog) or 'none'}); models are added in the configuration file",
                details={"param": f"models[{i}]"},
            )
        differs = _differences(model, known)
        if differs:
            raise InvalidRequest(
                f"models[{i}] ({model.id}): {', '.join(differs)} differ from the catalog; "
                "prices and limits change in the configuration file",
                details={"param": f"models[{i}]", "fields": differs},
            )
    return {"base_url": data.base_url.rstrip("/"), "base_url_env": None,
            "api_key_env": data.api_key_id}  # fmt: skip


def _differences(model: Any, known: dict[str, Any]) -> list[str]:
    """The legacy model fields that differ from the catalog's facts."""
    caps = set(known["capabilities"])
    facts = {
        "maxTokens": (model.max_tokens, known["max_output_tokens"]),
        "contextWindow": (model.context_window, known["context_window"]),
        "costPerInputToken": (model.cost_per_input_token, known["input_price_per_mtok"] / 1e6),
        "costPerOutputToken": (model.cost_per_output_token, known["output_price_per_mtok"] / 1e6),
        "supportsStreaming": (model.supports_streaming, "streaming" in caps),
        "supportsFunctionCalling": (model.supports_function_calling, "tools" in caps),
    }
    out = [name for name, (given, real) in facts.items() if not _same(given, real)]
    if set(model.capabilities) - caps:
        out.append("capabilities")
    return out


def _same(given: Any, real: Any) -> bool:
    if isinstance(real, float):
        return abs(float(given) - real) <= 1e-12 + 1e-9 * abs(real)
    return given == real


async def _drain(opened: Opened) -> None:
    """Read a streamed completion's OpenAI chunks to their end; an in-band error raised."""
    async for data in sse_events(opened, STREAM_HEARTBEAT_S):
        for line in data.split(b"\n"):
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if isinstance(chunk, dict) and isinstance(chunk.get("error"), dict):
                error = chunk["error"]
                raise CBError.from_dict({"type": error.get("code") or "provider_error",
                                         "message": error.get("message") or ""})  # fmt: skip


async def _ended(rt: Runtime, tenant_id: str, execution_id: str) -> dict[str, Any]:
    """A finished execution's result document from history (caught up first)."""
    await rt.read_models.catch_up()
    found = await rt.read_models.get_execution(tenant_id, execution_id)
    if found is None or found["status"] == "running":
        raise CBError(f"execution {execution_id} ended but history does not show it yet",
                      execution_id=execution_id)  # fmt: skip
    if found["status"] != "completed":
        error = found.get("error") or {}
        raise CBError.from_dict({"type": error.get("type") or "provider_error",
                                 "message": error.get("message") or "the completion failed",
                                 "execution_id": execution_id})  # fmt: skip
    return found
