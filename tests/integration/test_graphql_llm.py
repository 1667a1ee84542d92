"""Legacy GraphQL LLM operations, as the legacy SDKs write them: real completions through
virtual models (recorded, priced, refused by budgets, provider failures as coded errors),
agents whose legacy fields are served truthfully, providers with real health checks, and
the platform admin's provider configuration."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.cluster import ADMIN_TOKEN
from tests.support.graphql import graphql

# the legacy TypeScript SDK's basic example: its own spelling of the input type
COMPLETION = """
mutation LlmChatCompletion($input: LlmchatCompletionInput!) {
  llmChatCompletion(input: $input) {
    id model provider
    choices { index message { role content name } finishReason }
    usage { promptTokens completionTokens totalTokens estimatedCost }
    routingInfo { selectedProvider routingStrategy latencyMs retryCount fallbackUsed }
  }
}
"""
AGENT = (
    "id name llmProvider{providerType model baseUrl} llmConfig{temperature maxTokens topP "
    "frequencyPenalty presencePenalty stopSequences} prompts{system userTemplate "
    "contextInstructions} capabilities tools createdAt updatedAt"
)
CREATE = f"mutation CreateAgent($input: AgentDefinitionInput!) {{ createAgent(input: $input) {{ {AGENT} }} }}"  # noqa: E501
GET = f"query GetAgent($id: ID!) {{ agent(id: $id) {{ {AGENT} }} }}"
PROVIDERS = """
query { llmProviders { id providerType name baseUrl models { id supportsStreaming }
  healthStatus { isHealthy lastCheck errorRate averageLatencyMs consecutiveFailures lastError }
  createdAt updatedAt } }
"""
CONFIGURE = """
mutation Configure($input: LlmProviderConfigInput!) {
  configureLlmProvider(input: $input) { id providerType baseUrl models { id } }
}
"""


def _ask(tag: str, **extra: Any) -> dict[str, Any]:
    return {"model": "cb:smart-chat", "messages": [{"role": "user", "content": tag}], **extra}


def _error(reply: dict[str, Any]) -> dict[str, Any]:
    assert reply.get("errors"), reply
    return reply["errors"][0]


@SQLITE_ONLY
def test_legacy_chat_completions(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant("Legacy LLM"), gateway.new_tenant("Other")
    emulator = gateway.cluster.emulator
    tag = f"gql-complete-{uuid.uuid4().hex[:8]}"
    emulator.script(tag, content="Four.", prompt_tokens=21, completion_tokens=7)

    reply = graphql(
        gateway,
        tenant.headers(),
        COMPLETION,
        input=_ask(tag, maxTokens=50, user="ada", projectId="proj-7"),
    )
    assert "errors" not in reply, reply
    answer = reply["data"]["llmChatCompletion"]
    sent = emulator.requests_matching(tag)
    assert len(sent) == 1 and sent[0].body["model"] == answer["model"]  # resolved, called
    assert answer["choices"] == [
        {
            "index": 0,
            "finishReason": "stop",
            "message": {"role": "assistant", "content": "Four.", "name": None},
        }
    ]
    assert answer["usage"]["promptTokens"] == 21 and answer["usage"]["totalTokens"] == 28
    assert answer["usage"]["estimatedCost"] > 0
    routing = answer["routingInfo"]
    assert routing["selectedProvider"] == answer["provider"] != ""
    assert routing["routingStrategy"] == "balanced" and routing["retryCount"] == 0
    assert routing["fallbackUsed"] is False and routing["latencyMs"] >= 0

    # recorded as a chat completion execution: the same usage and cost, user and project
    history = gateway.ended_execution(tenant, answer["id"])
    assert history["kind"] == "chat_completion" and history["status"] == "completed"
    assert history["usage"]["cost_usd"] == answer["usage"]["estimatedCost"]
    assert history["usage"]["total_tokens"] == 28
    assert history["metadata"]["request_metadata"] == {"project_id": "proj-7"}
    subject = gateway.http.get("/api/v1/subjects/ada", headers=tenant.headers()).json()
    assert [e["execution_id"] for e in subject["executions"]] == [answer["id"]]
    assert history["model_requested"] == "cb:smart-chat"
    assert (
        gateway.http.get(f"/api/v1/executions/{answer['id']}", headers=other.headers()).status_code
        == 404
    )

    # stream: true runs streamed (replayable), and answers the whole text at its end
    streamed_tag = f"gql-stream-{uuid.uuid4().hex[:8]}"
    emulator.script(streamed_tag, chunks=["Str", "eamed ", "answer"], completion_tokens=3)
    reply = graphql(gateway, tenant.headers(), COMPLETION, input=_ask(streamed_tag, stream=True))
    assert "errors" not in reply, reply
    streamed = reply["data"]["llmChatCompletion"]
    assert streamed["choices"][0]["message"]["content"] == "Streamed answer"
    assert emulator.requests_matching(streamed_tag)[0].body["stream"] is True
    history = gateway.ended_execution(tenant, streamed["id"])
    assert history["stream"] is True
    assert history["usage"]["cost_usd"] == streamed["usage"]["estimatedCost"] > 0

    # errors: a provider refusal, bad input, then a budget, each with a code and its type
    failing = f"gql-fail-{uuid.uuid4().hex[:8]}"
    emulator.script(
        failing,
        status=400,
        error_body={
            "error": {
                "message": "bad request",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        },
    )
    err = _error(graphql(gateway, tenant.headers(), COMPLETION, input=_ask(failing)))
    assert err["extensions"]["type"].startswith("provider_")
    assert err["extensions"]["code"] == err["extensions"]["type"].upper()
    assert err["extensions"]["executionId"]
    err = _error(graphql(gateway, tenant.headers(), COMPLETION, input=_ask(tag, temperature=7.5)))
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "temperature" in err["message"]
    err = _error(
        graphql(
            gateway, tenant.headers(), COMPLETION, input={**_ask(tag), "model": "no-such-model"}
        )
    )
    assert err["extensions"]["type"] == "model_not_found"
    budget = graphql(
        gateway,
        tenant.headers(),
        "mutation($input: BudgetInput!) { setBudget(input: $input) { budgetId } }",
        input={"limit": 0.000001, "period": "daily", "warningThreshold": 0.5},
    )
    assert budget["data"]["setBudget"]["budgetId"] == "tenant", budget
    before = len(emulator.requests_matching(tag))
    err = _error(graphql(gateway, tenant.headers(), COMPLETION, input=_ask(tag)))
    assert err["extensions"] == {"code": "BUDGET_EXCEEDED", "type": "budget_exceeded"}
    assert len(emulator.requests_matching(tag)) == before  # refused before any call


@SQLITE_ONLY
def test_legacy_agents_and_their_provider_fields(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant("Legacy agents"), gateway.new_tenant("Other")
    emulator = gateway.cluster.emulator
    legacy_key = f"sk-legacy-{uuid.uuid4().hex}"
    definition = {
        "name": "Helper",
        "description": "answers",
        "llmProvider": {
            "providerType": "anthropic",
            "model": "gpt-4o-mini",
            "apiKey": "",
            "baseUrl": "https://llm.example.com/v1",
        },
        "llmConfig": {"temperature": 0.2, "maxTokens": 64, "stopSequences": []},
        "prompts": {"system": "Be brief.", "userTemplate": "{prompt}"},
        "capabilities": ["chat"],
        "tools": [],
    }
    created = graphql(gateway, tenant.headers(), CREATE, input=definition)
    assert "errors" not in created, created
    agent = created["data"]["createAgent"]
    # providerType is the resolved model's provider's; baseUrl is kept
    assert agent["llmProvider"] == {
        "providerType": "openai",
        "model": "gpt-4o-mini",
        "baseUrl": "https://llm.example.com/v1",
    }
    fetched = graphql(gateway, tenant.headers(), GET, id=agent["id"])  # the SDK's `ID!`
    assert fetched["data"]["agent"] == agent
    assert graphql(gateway, other.headers(), GET, id=agent["id"])["data"]["agent"] is None

    # a legacy apiKey becomes the tenant's key for its provider: the agent's calls use it
    keyed = {
        **definition,
        "llmProvider": {"providerType": "openai", "model": "gpt-4o-mini", "apiKey": legacy_key},
    }
    keyed_agent = graphql(gateway, tenant.headers(), CREATE, input=keyed)["data"]["createAgent"]
    tag = f"gql-key-{uuid.uuid4().hex[:8]}"
    assert gateway.execute(tenant, keyed_agent["id"], tag).status_code == 200
    assert emulator.requests_matching(tag)[0].headers["authorization"] == f"Bearer {legacy_key}"
    other_agent = gateway.new_agent(other, model="gpt-4o-mini")
    other_tag = f"gql-nokey-{uuid.uuid4().hex[:8]}"
    assert gateway.execute(other, other_agent["id"], other_tag).status_code == 200
    assert legacy_key not in str(emulator.requests_matching(other_tag)[0].headers)
    unknown = {
        **definition,
        "llmProvider": {"providerType": "acme", "model": "gpt-4o-mini", "apiKey": "sk-x"},
    }
    err = _error(graphql(gateway, tenant.headers(), CREATE, input=unknown))
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "acme" in err["message"]
    assert legacy_key not in str(graphql(gateway, tenant.headers(), "{ agents { " + AGENT + " } }"))


@SQLITE_ONLY
def test_providers_health_and_admin_configuration(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Providers")
    emulator = gateway.cluster.emulator
    before = gateway.http.get("/api/v1/providers/gemini", headers=tenant.headers()).json()
    checks_before = _gemini_checks(gateway)
    listed = graphql(gateway, tenant.headers(), PROVIDERS)
    assert "errors" not in listed, listed
    providers = {p["id"]: p for p in listed["data"]["llmProviders"]}
    now = dt.datetime.now(dt.UTC)
    for provider in providers.values():
        checked = dt.datetime.fromisoformat(provider["healthStatus"]["lastCheck"])
        assert checked <= now + dt.timedelta(seconds=1)
    gemini = providers["gemini"]["healthStatus"]
    if before["health"]["last_check"] is None:  # never checked: a real check ran now
        assert _gemini_checks(gateway) > checks_before
        assert gemini["isHealthy"] is True and gemini["consecutiveFailures"] == 0
    deadline = time.monotonic() + 5  # the outcome reaches the provider actor in a batch
    while (
        gateway.http.get("/api/v1/providers/gemini", headers=tenant.headers()).json()["health"][
            "last_check"
        ]
        is None
    ):
        assert time.monotonic() < deadline, "the check never reached the provider actor"
        time.sleep(0.1)

    config = {
        "providerType": "openai",
        "name": "brittle",
        "baseUrl": emulator.base_url,
        "apiKeyId": "OPENAI_API_KEY",
        "models": [],
    }
    err = _error(graphql(gateway, tenant.headers(), CONFIGURE, input=config))
    assert err["extensions"]["code"] == "FORBIDDEN" and "platform admin" in err["message"]
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    catalog = gateway.http.get("/api/v1/providers/brittle", headers=tenant.headers()).json()
    model = catalog["models"][0]
    legacy_model = {
        "id": model["id"],
        "name": model["provider_model"],
        "maxTokens": model["max_output_tokens"],
        "contextWindow": model["context_window"],
        "costPerInputToken": model["input_price_per_mtok"] / 1e6,
        "costPerOutputToken": model["output_price_per_mtok"] / 1e6,
        "supportsStreaming": "streaming" in model["capabilities"],
        "supportsFunctionCalling": "tools" in model["capabilities"],
        "capabilities": model["capabilities"],
    }
    configured = graphql(gateway, admin, CONFIGURE, input={**config, "models": [legacy_model]})
    assert "errors" not in configured, configured
    assert configured["data"]["configureLlmProvider"]["id"] == "brittle"
    assert configured["data"]["configureLlmProvider"]["baseUrl"] == emulator.base_url
    overrides = gateway.http.get("/api/v1/admin/config", headers=admin).json()
    assert overrides["provider_overrides"]["brittle"]["base_url"] == emulator.base_url
    assert overrides["provider_overrides"]["brittle"]["api_key_env"] == "OPENAI_API_KEY"
    for bad, word in (
        ({"apiKeyId": "NOT_SET_ANYWHERE"}, "apiKeyId"),
        ({"providerType": "anthropic"}, "providerType"),
        ({"models": [{**legacy_model, "costPerInputToken": 9.0}]}, "costPerInput"),
        ({"name": "nope"}, "nope"),
    ):
        err = _error(graphql(gateway, admin, CONFIGURE, input={**config, **bad}))
        assert word in err["message"] and err["extensions"]["code"] in {
            "BAD_USER_INPUT",
            "NOT_FOUND",
        }
    # the admin token reads no tenant's data
    err = _error(graphql(gateway, admin, "{ llmProviders { id } }"))
    assert err["extensions"]["code"] == "FORBIDDEN"


def _gemini_checks(gateway: ApiClient) -> int:
    """Health checks the emulator saw from the gemini provider (a GET with Gemini's key)."""
    with gateway.cluster.emulator._lock:
        recorded = list(gateway.cluster.emulator.requests)
    return sum(1 for r in recorded if r.method == "GET" and "x-goog-api-key" in r.headers)
