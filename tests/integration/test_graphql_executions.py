"""Legacy GraphQL executions and state agent configurations, for real: configurations stored
as tenant events, triggers that run real executions (through the provider emulator), and
executions read back from the history projection — tenant-scoped."""

from __future__ import annotations

import uuid
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.graphql import graphql

EXECUTION_FIELDS = """
  id agentId resourceId stateId status inputData outputData errorMessage
  startedAt completedAt durationMs retryCount
"""

CREATE_CONFIG = """
mutation CreateStateAgentConfig($input: StateAgentConfigInput!) {
  createStateAgentConfig(input: $input) {
    id stateId agentId inputMapping outputMapping autoActivity enabled createdAt updatedAt
    llmConfig { temperature maxTokens topP frequencyPenalty presencePenalty stopSequences }
    schedule { initialDelaySeconds intervalSeconds maxExecutions }
    retryConfig { maxAttempts backoffSeconds retryOnErrors }
  }
}
"""

CONFIGS = """
query StateAgentConfigs($stateId: String!) {
  stateAgentConfigs(stateId: $stateId) { id agentId enabled retryConfig { maxAttempts } }
}
"""

TRIGGER = f"""
mutation TriggerStateAgents($input: TriggerStateAgentsInput!) {{
  triggerStateAgents(input: $input) {{ {EXECUTION_FIELDS} }}
}}
"""

EXECUTION = f"""
query AgentExecution($id: String!) {{ agentExecution(id: $id) {{ {EXECUTION_FIELDS} }} }}
"""

RESOURCE = f"""
query ResourceExecutions($resourceId: String!) {{
  resourceExecutions(resourceId: $resourceId) {{ {EXECUTION_FIELDS} }}
}}
"""


def _config_input(agent_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "stateId": "review",
        "agentId": agent_id,
        "llmConfig": {"temperature": 0.2, "maxTokens": 64, "stopSequences": []},
        "inputMapping": {"name": "$.customer.name", "sku": "$.items[0].sku"},
        "outputMapping": {"review.sentiment": "$.json.sentiment"},
        "autoActivity": "approve",
        "schedule": {"maxExecutions": 1},
        "retryConfig": {
            "maxAttempts": 2,
            "backoffSeconds": 0,
            "retryOnErrors": ["ProviderRejectedRequest"],
        },
        "enabled": True,
        **changes,
    }


def _error(reply: dict[str, Any]) -> str:
    assert reply.get("errors"), reply
    return reply["errors"][0]["message"]


def _ok(reply: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in reply, reply
    return reply["data"]


@SQLITE_ONLY
def test_state_agents_run_as_real_executions_seen_in_graphql_and_rest(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = gateway.new_agent(a, user_template="Review the order of {{name}}: {prompt}")
    tag = f"sa-{uuid.uuid4().hex[:10]}"
    data = {"customer": {"name": tag}, "items": [{"sku": "A-1"}]}
    emu.script(tag, content='{"sentiment": "positive"}')
    emu.script(tag, status=400, times=1)  # the first attempt is rejected, then retried

    created = _ok(graphql(gateway, a.headers(), CREATE_CONFIG, input=_config_input(agent["id"])))
    config = created["createStateAgentConfig"]
    assert config["agentId"] == agent["id"] and config["stateId"] == "review"
    assert config["llmConfig"]["maxTokens"] == 64 and config["llmConfig"]["stopSequences"] == []
    assert config["inputMapping"] == {"name": "$.customer.name", "sku": "$.items[0].sku"}
    assert config["retryConfig"]["retryOnErrors"] == ["ProviderRejectedRequest"]
    assert config["schedule"] == {
        "initialDelaySeconds": None,
        "intervalSeconds": None,
        "maxExecutions": 1,
    }
    assert config["autoActivity"] == "approve" and config["createdAt"] == config["updatedAt"]
    disabled = _config_input(agent["id"], enabled=False, retryConfig=None)
    _ok(graphql(gateway, a.headers(), CREATE_CONFIG, input=disabled))
    listed = _ok(graphql(gateway, a.headers(), CONFIGS, stateId="review"))["stateAgentConfigs"]
    assert [c["enabled"] for c in listed] == [True, False] and listed[0]["id"] == config["id"]

    # the trigger runs the enabled configuration only, retried once, tagged
    trigger = {"resourceId": "order-1", "stateId": "review", "data": data}
    [run] = _ok(graphql(gateway, a.headers(), TRIGGER, input=trigger))["triggerStateAgents"]
    assert run["status"] == "COMPLETED" and run["retryCount"] == 1, run
    assert (run["resourceId"], run["stateId"], run["agentId"]) == ("order-1", "review", agent["id"])
    assert run["inputData"]["input"] == {"name": tag, "sku": "A-1"}
    assert run["inputData"]["prompt"] == f'Review the order of {tag}: {{"sku": "A-1"}}'
    assert run["outputData"]["content"] == '{"sentiment": "positive"}'
    assert run["outputData"]["mapped_fields"] == {"review": {"sentiment": "positive"}}
    assert isinstance(run["durationMs"], int) and run["completedAt"] and run["startedAt"]
    sent = emu.requests_matching(tag)[-1].body
    assert sent["messages"][-1]["content"] == run["inputData"]["prompt"]  # template applied once
    assert 64 in (sent.get("max_tokens"), sent.get("max_completion_tokens"))

    again = _ok(graphql(gateway, a.headers(), EXECUTION, id=run["id"]))["agentExecution"]
    assert again == run
    history = _ok(graphql(gateway, a.headers(), RESOURCE, resourceId="order-1"))
    first, retried = history["resourceExecutions"][1], history["resourceExecutions"][0]
    assert retried == run  # newest first
    assert first["status"] == "FAILED" and first["retryCount"] == 0 and first["errorMessage"]
    assert first["outputData"] is None

    # REST history shows the tags; a REST execution can set them
    rest = gateway.http.get(f"/api/v1/executions/{run['id']}", headers=a.headers()).json()
    assert (rest["resource_id"], rest["state_id"], rest["retry_count"]) == ("order-1", "review", 1)
    tags = {"resource_id": "order-1", "state_id": "shipped"}
    executed = gateway.execute(a, agent["id"], f"{tag} by REST", metadata=tags)
    assert executed.status_code == 200, executed.text
    history = _ok(graphql(gateway, a.headers(), RESOURCE, resourceId="order-1"))
    newest = history["resourceExecutions"][0]
    assert newest["id"] == executed.json()["execution_id"] and newest["stateId"] == "shipped"
    assert newest["inputData"]["prompt"] == f"{tag} by REST" and newest["retryCount"] == 0

    # without stateId the resource's last state runs: "shipped" has no configurations
    untargeted = graphql(gateway, a.headers(), TRIGGER, input={"resourceId": "order-1"})
    assert _ok(untargeted)["triggerStateAgents"] == []

    # another tenant sees none of it, and cannot bind A's agent
    assert _ok(graphql(gateway, b.headers(), EXECUTION, id=run["id"]))["agentExecution"] is None
    seen = _ok(graphql(gateway, b.headers(), RESOURCE, resourceId="order-1"))
    assert seen["resourceExecutions"] == []
    assert _ok(graphql(gateway, b.headers(), CONFIGS, stateId="review"))["stateAgentConfigs"] == []
    assert _ok(graphql(gateway, b.headers(), TRIGGER, input=trigger))["triggerStateAgents"] == []
    stolen = graphql(gateway, b.headers(), CREATE_CONFIG, input=_config_input(agent["id"]))
    assert f"agent {agent['id']} not found" in _error(stolen)
    _audited(gateway, a, config["id"])


@SQLITE_ONLY
def test_bad_state_agent_inputs_are_clear_errors(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    headers = tenant.headers()
    unknown = graphql(gateway, headers, CREATE_CONFIG, input=_config_input("no-such-agent"))
    assert "agent no-such-agent not found" in _error(unknown) and unknown["data"] is None
    bad_path = _config_input(agent["id"], inputMapping={"name": "$.customer[name]"})
    assert "malformed" in _error(graphql(gateway, headers, CREATE_CONFIG, input=bad_path))
    not_object = _config_input(agent["id"], outputMapping=["$.content"])
    assert "outputMapping" in _error(graphql(gateway, headers, CREATE_CONFIG, input=not_object))
    retry = {"maxAttempts": 0, "backoffSeconds": 0, "retryOnErrors": []}
    bad_retry = _config_input(agent["id"], retryConfig=retry)
    assert "maxAttempts" in _error(graphql(gateway, headers, CREATE_CONFIG, input=bad_retry))
    assert _ok(graphql(gateway, headers, CONFIGS, stateId="review"))["stateAgentConfigs"] == []

    _ok(graphql(gateway, headers, CREATE_CONFIG, input=_config_input(agent["id"])))
    missing = {"resourceId": "r-1", "stateId": "review", "data": {"customer": {}}}
    message = _error(graphql(gateway, headers, TRIGGER, input=missing))
    assert "inputMapping.name" in message and "$.customer.name" in message
    no_state = _error(graphql(gateway, headers, TRIGGER, input={"resourceId": "never-seen"}))
    assert "give stateId" in no_state
    assert _ok(graphql(gateway, headers, RESOURCE, resourceId="r-1"))["resourceExecutions"] == []
    invalid = graphql(gateway, headers, TRIGGER, input={"stateId": "review"})  # no resourceId
    assert "resourceId" in _error(invalid)


def test_rest_tags_find_executions_in_history(gateway: ApiClient) -> None:
    """On SQLite and PostgreSQL: the tag columns and their index, and the sealed input."""
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    resource = f"res-{uuid.uuid4().hex[:8]}"
    reply = gateway.execute(tenant, agent["id"], "tagged", metadata={"resource_id": resource})
    assert reply.status_code == 200, reply.text
    found = _ok(graphql(gateway, tenant.headers(), RESOURCE, resourceId=resource))
    [execution] = found["resourceExecutions"]
    assert execution["id"] == reply.json()["execution_id"] and execution["status"] == "COMPLETED"
    assert execution["stateId"] == "unknown" and execution["inputData"]["prompt"] == "tagged"
    assert execution["outputData"]["content"] == reply.json()["response"]["content"]


def _audited(gateway: ApiClient, tenant: Tenant, config_id: str) -> None:
    reply = gateway.http.get(
        "/api/v1/audit", params={"kind": "state_agent_config.created"}, headers=tenant.headers()
    )
    assert reply.status_code == 200, reply.text
    entries = reply.json()["entries"]
    assert config_id in [e["detail"]["id"] for e in entries] and len(entries) == 2
