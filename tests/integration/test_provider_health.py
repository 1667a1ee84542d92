"""Provider health, read per provider over REST and the legacy GraphQL `llmProviders`."""

from __future__ import annotations

import uuid

from tests.support.client import ApiClient
from tests.support.graphql import graphql
from tests.support.providers import health_of

PROVIDERS = """
{ llmProviders {
    id providerType name baseUrl createdAt updatedAt
    models { id name maxTokens contextWindow costPerInputToken costPerOutputToken
             supportsStreaming supportsFunctionCalling capabilities }
    healthStatus { isHealthy lastCheck errorRate averageLatencyMs consecutiveFailures lastError }
} }
"""


def test_failures_and_recovery_show_in_the_providers_health(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    headers = tenant.headers()
    agent = gateway.new_agent(tenant, model="ollama-llama3.2")
    tag = f"h-{uuid.uuid4().hex[:8]}"
    emu.script(tag, content="fine again")
    emu.script(tag, status=500, times=2)  # both attempts of one execution (one retry)

    failed = gateway.execute(tenant, agent["id"], tag).json()
    assert failed["error"]["type"] == "provider_error"
    sick = health_of(gateway, headers, "ollama", lambda h: h["consecutive_failures"] >= 2)
    assert sick["consecutive_failures"] >= 2 and sick["error_rate"] > 0
    assert sick["last_error"] == "provider_error" and sick["last_check"]

    assert gateway.execute(tenant, agent["id"], tag).json()["status"] == "completed"
    well = health_of(gateway, headers, "ollama", lambda h: h["consecutive_failures"] == 0)
    assert well["consecutive_failures"] == 0 and well["healthy"] is True
    assert well["breaker"] == "closed" and well["average_latency_ms"] > 0

    listed = gateway.http.get("/api/v1/providers", headers=headers).json()["providers"]
    expected = {"openai", "anthropic", "azure", "ollama", "gemini", "flaky", "brittle"}
    expected |= {"pool", "probed", "groq"}  # several endpoints; a preset with its key set
    assert {p["id"] for p in listed} == expected
    openai = next(p for p in listed if p["id"] == "openai")
    assert {"gpt-4o-mini", "o4-mini"} <= {m["id"] for m in openai["models"]}
    assert "test-provider-key" not in str(listed)
    assert gateway.http.get("/api/v1/providers/nope", headers=headers).status_code == 404
    assert gateway.http.get("/api/v1/providers").status_code in (400, 401)


def test_legacy_llm_providers_query_answers_in_the_old_shape(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    body = graphql(gateway, tenant.headers(), PROVIDERS)
    assert "errors" not in body, body
    providers = {p["id"]: p for p in body["data"]["llmProviders"]}
    anthropic = providers["anthropic"]
    assert anthropic["providerType"] == "anthropic" and anthropic["baseUrl"].startswith("http")
    sonnet = next(m for m in anthropic["models"] if m["id"] == "claude-sonnet-4-6")
    assert sonnet["costPerInputToken"] == 3.0 / 1e6 and sonnet["supportsFunctionCalling"]
    assert sonnet["maxTokens"] == 64000 and sonnet["contextWindow"] == 200000
    status = anthropic["healthStatus"]
    assert isinstance(status["isHealthy"], bool) and status["lastCheck"]
    one = graphql(gateway, tenant.headers(), '{ llmProvider(id: "ollama") { id name } }')
    assert one["data"]["llmProvider"] == {"id": "ollama", "name": "ollama"}
    none = graphql(gateway, tenant.headers(), '{ llmProvider(id: "nope") { id } }')
    assert none["data"]["llmProvider"] is None
