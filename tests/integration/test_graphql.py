"""GraphQL agent management in the legacy shape, executed for real over REST."""

from __future__ import annotations

from tests.support.client import ApiClient
from tests.support.graphql import graphql
from tests.support.store import stored_events

CREATE = """
mutation Create($input: AgentDefinitionInput!) {
  createAgent(input: $input) {
    id name description capabilities tools createdAt updatedAt
    llmProvider { providerType model baseUrl }
    llmConfig { temperature maxTokens topP frequencyPenalty presencePenalty stopSequences }
    prompts { system userTemplate contextInstructions }
  }
}
"""

LEGACY_INPUT = {
    "name": "Mathematical Reasoning Specialist",
    "description": "Solves problems step by step",
    "llmProvider": {"providerType": "openai", "model": "cb:analysis", "apiKey": "sk-legacy-123456"},
    "llmConfig": {"temperature": 0.1, "maxTokens": 800, "stopSequences": ["END"]},
    "prompts": {"system": "You are a careful mathematician.", "userTemplate": "Solve: {prompt}"},
    "capabilities": ["math"],
    "tools": [],
}


def test_legacy_create_agent_then_execute_over_rest(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    created = graphql(gateway, tenant.headers(), CREATE, input=LEGACY_INPUT)
    assert "errors" not in created, created
    agent = created["data"]["createAgent"]
    assert agent["name"] == "Mathematical Reasoning Specialist"
    assert agent["llmProvider"] == {
        "providerType": "openai",
        "model": "cb:analysis",
        "baseUrl": None,
    }
    assert agent["llmConfig"]["temperature"] == 0.1
    assert agent["llmConfig"]["maxTokens"] == 800
    assert agent["llmConfig"]["stopSequences"] == ["END"]
    assert agent["prompts"]["userTemplate"] == "Solve: {prompt}"

    listed = graphql(gateway, tenant.headers(), "{ agents { id name } health }")
    assert listed["data"] == {
        "agents": [{"id": agent["id"], "name": agent["name"]}],
        "health": "ok",
    }
    one = graphql(gateway, tenant.headers(), f'{{ agent(id: "{agent["id"]}") {{ id }} }}')
    assert one["data"]["agent"]["id"] == agent["id"]

    reply = gateway.execute(tenant, agent["id"], "2+2")
    assert reply.status_code == 200, reply.text
    sent = gateway.cluster.emulator.requests_matching("Solve: 2+2")[-1].body
    assert sent["model"] == "o4-mini"  # cb:analysis resolves; a reasoning model
    assert sent["max_completion_tokens"] == 800 and "temperature" not in sent
    assert sent["messages"][0] == {"role": "system", "content": "You are a careful mathematician."}

    # the legacy apiKey is never returned and never stored in clear
    assert "sk-legacy" not in str(listed) + str(created)
    events = stored_events(gateway.settings)
    assert b"sk-legacy-123456" not in b"".join(raw for raw, _ in events)
    kept = [e for _, e in events if type(e).__name__ == "ProviderCredentialStored"]
    assert kept and all(e.ciphertext and "sk-legacy" not in e.ciphertext for e in kept)


def test_graphql_is_tenant_scoped(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = graphql(gateway, a.headers(), CREATE, input=LEGACY_INPUT)["data"]["createAgent"]
    seen_by_b = graphql(
        gateway, b.headers(), f'{{ agent(id: "{agent["id"]}") {{ id }} agents {{ id }} }}'
    )
    assert seen_by_b["data"] == {"agent": None, "agents": []}
    # without credentials only `health` answers; anything else is a GraphQL error, while a
    # credential that is present but wrong stays an HTTP 401
    no_key = graphql(gateway, {"X-Tenant-ID": a.id}, "{ health }")
    assert no_key == {"data": {"health": "ok"}}
    refused = graphql(gateway, {"X-Tenant-ID": a.id}, "{ agents { id } }")
    assert refused["data"] is None
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["UNAUTHENTICATED"]
    wrong_key = gateway.http.post(
        "/graphql", json={"query": "{ health }"}, headers=a.headers("cb_not-a-key")
    )
    assert wrong_key.status_code == 401
