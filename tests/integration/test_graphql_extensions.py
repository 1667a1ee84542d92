"""The agent's §12.1/§12.2 GraphQL fields, agent management, and deprecation tracking, over
real HTTP against the running app: values equal what REST shows for two tenants and never
the other tenant's; update and delete are audited; deprecated fields are counted (an event,
then a projection), shown to the tenant and the platform admin, and announced in headers."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.graphql import graphql
from tests.support.store import stored_events

FIELDS = """
  id tenantId tenantPermissions
  executionEndpoints { execute stream history resume }
  streamingConfig { endpoint protocol eventTypes heartbeatSeconds resumable resumeHeader }
  virtualModelMappings { name kind source strategy candidates resolvesTo provider available }
  toolConfigurations { name source inputSchema health { status lastError } }
  performanceMetrics(window: LAST_HOUR) {
    executions succeeded failed successRate latencyMs { p50 p95 p99 mean }
    promptTokens completionTokens totalTokens costUsd
  }
  executionHistory(first: 10) {
    edges { cursor node { id agentId status promptTokens completionTokens costUsd } }
    pageInfo { hasNextPage endCursor }
  }
"""
ONE = "query One($id: String!) { agent(id: $id) { " + FIELDS + " } }"
HISTORY = """
query History($id: String!, $first: Int!, $after: String, $status: ExecutionStatus) {
  agent(id: $id) {
    executionHistory(first: $first, after: $after, status: $status) {
      edges { node { id status } } pageInfo { hasNextPage endCursor }
    }
  }
}
"""
MAPPING = {"strategy": "cost_optimized", "candidates": ["gpt-4o", "gpt-4.1-nano"]}


def _tag(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _agent(gateway: ApiClient, tenant: Tenant, agent_id: str, key: str | None = None) -> dict:
    reply = graphql(gateway, tenant.headers(key), ONE, id=agent_id)
    assert reply["data"]["agent"] is not None, reply
    return reply


def _history(gateway: ApiClient, tenant: Tenant, agent_id: str) -> list[dict[str, Any]]:
    found = gateway.http.get(f"/api/v1/executions?agent_id={agent_id}", headers=tenant.headers())
    assert found.status_code == 200, found.text
    return found.json()["executions"]


def _model_entry(gateway: ApiClient, tenant: Tenant, name: str) -> dict[str, Any]:
    models = gateway.http.get("/api/v1/models", headers=tenant.headers()).json()["models"]
    return next(m for m in models if m["id"] == name)


def _check_metrics(metrics: dict[str, Any], runs: list[dict[str, Any]]) -> None:
    """The agent's metrics equal those computed from its own history records."""
    ended = [r for r in runs if r["status"] != "running"]
    completed = [r for r in ended if r["status"] == "completed"]
    assert metrics["executions"] == len(ended)
    assert metrics["succeeded"] == len(completed)
    assert metrics["failed"] == len([r for r in ended if r["status"] == "failed"])
    assert metrics["successRate"] == round(len(completed) / len(ended), 6)
    for ours, theirs in (
        ("promptTokens", "prompt_tokens"),
        ("completionTokens", "completion_tokens"),
    ):
        assert metrics[ours] == sum(r["usage"][theirs] for r in ended)
    assert abs(metrics["costUsd"] - sum(r["usage"]["cost_usd"] for r in ended)) < 1e-9
    durations = sorted(r["duration_ms"] for r in ended)
    lower = durations[(len(durations) - 1) // 2]  # the histogram's rank: within 5 %
    assert abs(metrics["latencyMs"]["p50"] - lower) <= 0.05 * lower + 1e-6


@SQLITE_ONLY
def test_the_agent_fields_are_the_tenants_own_and_agree_with_rest(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    chat_a = gateway.new_agent(a, name="Chat A")
    tools_a = gateway.new_agent(a, name="Calc A", model="gpt-4o-mini",
                                tools=["mortgage_calculator"])  # fmt: skip
    mapped = gateway.http.put(f"/api/v1/tenants/{b.id}/model-mappings/cb:smart-chat",
                              json=MAPPING, headers=b.headers())  # fmt: skip
    assert mapped.status_code == 200, mapped.text
    chat_b = gateway.new_agent(b, name="Chat B")

    first, second, refused, other = (_tag(n) for n in ("first", "second", "refused", "other"))
    emu.script(first, content="one", prompt_tokens=11, completion_tokens=7)
    emu.script(second, content="two", prompt_tokens=5, completion_tokens=3)
    emu.script(refused, status=400, error_body={"error": {"message": "bad", "type": "x"}})
    emu.script(other, content="b's", prompt_tokens=40, completion_tokens=30)
    for tag in (first, second):
        assert gateway.execute(a, chat_a["id"], tag).status_code == 200
    assert gateway.execute(a, chat_a["id"], refused).status_code >= 400
    assert gateway.execute(b, chat_b["id"], other).status_code == 200
    runs_a = [gateway.ended_execution(a, r["execution_id"]) for r in
              _history(gateway, a, chat_a["id"])]  # fmt: skip
    runs_b = [gateway.ended_execution(b, r["execution_id"]) for r in
              _history(gateway, b, chat_b["id"])]  # fmt: skip
    assert len(runs_a) == 3 and len(runs_b) == 1

    seen_a = _agent(gateway, a, chat_a["id"])["data"]["agent"]
    seen_b = _agent(gateway, b, chat_b["id"])["data"]["agent"]
    assert (seen_a["tenantId"], seen_b["tenantId"]) == (a.id, b.id)
    assert "agents:read" in seen_a["tenantPermissions"] and "tenant:admin" in seen_a[
        "tenantPermissions"]  # fmt: skip

    # the endpoints are absolute, under this app's base URL, and work as given
    base = str(gateway.http.base_url).rstrip("/")
    urls = seen_a["executionEndpoints"]
    assert urls["execute"] == f"{base}/api/v1/agents/{chat_a['id']}/execute"
    assert urls["stream"] == f"{base}/api/v1/agents/{chat_a['id']}/execute/stream"
    assert urls["resume"] == f"{base}/api/v1/executions/{{execution_id}}/stream"
    listed = gateway.http.get(urls["history"], headers=a.headers())
    assert {e["execution_id"] for e in listed.json()["executions"]} == {
        r["execution_id"] for r in runs_a}  # fmt: skip
    assert seen_a["streamingConfig"]["endpoint"] == urls["stream"]
    assert seen_a["streamingConfig"]["protocol"] == "text/event-stream"
    assert seen_a["streamingConfig"]["resumeHeader"] == "Last-Event-ID"
    assert "content_chunk" in seen_a["streamingConfig"]["eventTypes"]

    # the model as each tenant resolves it: the platform's mapping for A, B's own for B
    [map_a], [map_b] = seen_a["virtualModelMappings"], seen_b["virtualModelMappings"]
    rest_a, rest_b = (_model_entry(gateway, t, "cb:smart-chat") for t in (a, b))
    assert (map_a["source"], map_a["strategy"]) == ("platform", rest_a["strategy"])
    assert map_a["candidates"] == rest_a["candidates"]
    assert map_a["resolvesTo"] == rest_a["resolves_to"] and map_a["available"]
    assert (map_b["source"], map_b["strategy"], map_b["candidates"]) == (
        "tenant", "cost_optimized", MAPPING["candidates"])  # fmt: skip
    assert map_b["resolvesTo"] == rest_b["resolves_to"] == "gpt-4.1-nano"
    assert runs_b[0]["model_resolved"] == "gpt-4.1-nano"

    assert seen_a["toolConfigurations"] == []
    [tool] = _agent(gateway, a, tools_a["id"])["data"]["agent"]["toolConfigurations"]
    assert (tool["name"], tool["source"], tool["health"]["status"]) == (
        "mortgage_calculator", "builtin", "ready")  # fmt: skip
    assert "price" in tool["inputSchema"]["properties"]

    # metrics and history from the projections: A's own runs only, B's own only
    _check_metrics(seen_a["performanceMetrics"], runs_a)
    _check_metrics(seen_b["performanceMetrics"], runs_b)
    assert seen_b["performanceMetrics"]["promptTokens"] == 40
    edges_a = seen_a["executionHistory"]["edges"]
    assert [e["node"]["id"] for e in edges_a] == [r["execution_id"] for r in runs_a]
    assert all(e["node"]["agentId"] == chat_a["id"] for e in edges_a)
    assert [e["node"]["id"] for e in seen_b["executionHistory"]["edges"]] == [
        runs_b[0]["execution_id"]]  # fmt: skip

    # cursor pagination: two pages, each execution once, newest first; a status filter
    page = graphql(gateway, a.headers(), HISTORY, id=chat_a["id"], first=2)["data"]["agent"]
    page = page["executionHistory"]
    assert page["pageInfo"]["hasNextPage"] and len(page["edges"]) == 2
    rest = graphql(
        gateway, a.headers(), HISTORY, id=chat_a["id"], first=2, after=page["pageInfo"]["endCursor"]
    )["data"]["agent"]["executionHistory"]
    assert not rest["pageInfo"]["hasNextPage"]
    assert [e["node"]["id"] for e in page["edges"] + rest["edges"]] == [
        r["execution_id"] for r in runs_a]  # fmt: skip
    failed = graphql(gateway, a.headers(), HISTORY, id=chat_a["id"], first=5, status="FAILED")
    assert [e["node"]["status"] for e in failed["data"]["agent"]["executionHistory"]["edges"]
            ] == ["FAILED"]  # fmt: skip
    bad = graphql(gateway, a.headers(), HISTORY, id=chat_a["id"], first=2, after="nonsense")
    assert "not a cursor" in bad["errors"][0]["message"]
    too_many = graphql(gateway, a.headers(), HISTORY, id=chat_a["id"], first=1000)
    assert "between 1 and 100" in too_many["errors"][0]["message"]

    # B never sees A's agent, by id or listing, and cannot change it
    crossed = graphql(gateway, b.headers(), ONE, id=chat_a["id"])
    assert crossed["data"] == {"agent": None}
    listed_b = graphql(gateway, b.headers(), "{ agentList { edges { node { id } } } }")
    assert [e["node"]["id"] for e in listed_b["data"]["agentList"]["edges"]] == [chat_b["id"]]
    hijack = graphql(gateway, b.headers(), 'mutation ($id: ID!) { deleteAgent(id: $id) '
                     '{ success } }', id=chat_a["id"])  # fmt: skip
    assert hijack["data"] is None and "not found" in hijack["errors"][0]["message"]
    still = gateway.http.get(f"/api/v1/agents/{chat_a['id']}", headers=a.headers())
    assert still.status_code == 200

    # a key without the scopes REST asks for gets those fields refused, the rest answered
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{a.id}/api-keys",
        json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    )
    narrow = issued.json()["api_key"]
    limited = graphql(gateway, a.headers(narrow), ONE, id=chat_a["id"])
    agent = limited["data"]["agent"]
    assert agent["tenantPermissions"] == ["agents:read"]
    assert agent["virtualModelMappings"] == seen_a["virtualModelMappings"]
    assert agent["performanceMetrics"] is None and agent["executionHistory"] is None
    messages = " ".join(e["message"] for e in limited["errors"])
    assert "analytics:read" in messages and "executions:read" in messages

    def refused_scopes() -> set[str]:  # the ingress records refusals each second
        audit = gateway.http.get("/api/v1/audit?kind=permission_denied", headers=a.headers())
        return {e["detail"]["scope"] for e in audit.json()["entries"]}

    wanted = {"analytics:read", "executions:read"}
    assert _until(lambda: refused_scopes() >= wanted) and refused_scopes() >= wanted


LIST = """
query L($filter: AgentFilterInput, $first: Int!, $after: String) {
  agentList(filter: $filter, first: $first, after: $after) {
    totalCount edges { cursor node { id name } } pageInfo { hasNextPage endCursor }
  }
}
"""
UPDATE = """
mutation U($id: ID!, $input: AgentUpdateInput!) {
  updateAgent(id: $id, input: $input) {
    id name description tools updatedAt llmConfig { temperature maxTokens }
    llmProvider { model }
  }
}
"""
DELETE = "mutation DeleteAgent($id: ID!) { deleteAgent(id: $id) { success id } }"


@SQLITE_ONLY
def test_agents_are_listed_with_filters_updated_and_deleted_and_audited(
    gateway: ApiClient,
) -> None:
    a = gateway.new_tenant("A")
    writer = gateway.new_agent(a, name="Writer", tags=["content"], capabilities=["prose"])
    coder = gateway.new_agent(a, name="Coder", model="gpt-4o-mini", tags=["dev"],
                              capabilities=["code"])  # fmt: skip
    mathy = gateway.new_agent(a, name="Math helper", model="gpt-4o-mini", tags=["dev"])

    def names(**variables: Any) -> list[str]:
        found = graphql(gateway, a.headers(), LIST, **{"first": 50, **variables})
        assert "errors" not in found, found
        return [e["node"]["name"] for e in found["data"]["agentList"]["edges"]]

    assert names() == ["Writer", "Coder", "Math helper"]  # oldest first
    assert names(filter={"model": "gpt-4o-mini"}) == ["Coder", "Math helper"]
    assert names(filter={"tag": "dev", "capability": "code"}) == ["Coder"]
    assert names(filter={"name": "HELP"}) == ["Math helper"]
    assert names(filter={"tag": "none"}) == []
    page = graphql(gateway, a.headers(), LIST, first=2)["data"]["agentList"]
    assert page["totalCount"] == 3 and page["pageInfo"]["hasNextPage"]
    assert names(first=2, after=page["pageInfo"]["endCursor"]) == ["Math helper"]

    # a partial update, as PATCH: the rest of the agent stays
    changed = graphql(
        gateway,
        a.headers(),
        UPDATE,
        id=coder["id"],
        input={"description": "reviews code", "parameters": {"temperature": 0.1, "maxTokens": 300}},
    )
    assert "errors" not in changed, changed
    agent = changed["data"]["updateAgent"]
    assert (agent["name"], agent["description"]) == ("Coder", "reviews code")
    assert agent["llmConfig"] == {"temperature": 0.1, "maxTokens": 300}
    assert agent["llmProvider"]["model"] == "gpt-4o-mini"
    rest = gateway.http.get(f"/api/v1/agents/{coder['id']}", headers=a.headers()).json()
    assert rest["description"] == "reviews code" and rest["version"] == coder["version"] + 1
    assert rest["parameters"] == {"temperature": 0.1, "max_tokens": 300}

    invalid = graphql(gateway, a.headers(), UPDATE, id=coder["id"],
                      input={"name": "", "parameters": {"temperature": 7}})  # fmt: skip
    assert invalid["data"] is None
    assert "input.name" in invalid["errors"][0]["message"]
    assert "input.parameters.temperature" in invalid["errors"][0]["message"]
    unknown_tool = graphql(gateway, a.headers(), UPDATE, id=coder["id"],
                           input={"tools": ["no_such_tool"]})  # fmt: skip
    assert "no_such_tool" in unknown_tool["errors"][0]["message"]

    # the legacy TS SDK's delete, word for word
    deleted = graphql(gateway, a.headers(), DELETE, id=mathy["id"])
    assert deleted["data"]["deleteAgent"] == {"success": True, "id": mathy["id"]}
    assert gateway.http.get(f"/api/v1/agents/{mathy['id']}", headers=a.headers()).status_code == 404
    again = graphql(gateway, a.headers(), DELETE, id=mathy["id"])
    assert again["data"] is None and "not found" in again["errors"][0]["message"]
    assert names() == ["Writer", "Coder"]

    # a key that may read but not write is refused both
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{a.id}/api-keys",
        json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    )
    reader = issued.json()["api_key"]
    for query, variables in (
        (DELETE, {"id": writer["id"]}),
        (UPDATE, {"id": writer["id"], "input": {"name": "x"}}),
    ):
        refused = graphql(gateway, a.headers(reader), query, **variables)
        assert "agents:write" in refused["errors"][0]["message"]
    assert names() == ["Writer", "Coder"]

    # both changes are in the audit trail, with who made them
    trail = gateway.http.get("/api/v1/audit", headers=a.headers()).json()["entries"]
    updated = next(e for e in trail if e["kind"] == "agent.updated")
    assert updated["detail"]["fields"] == ["description", "parameters"]
    assert updated["actor"].startswith("key:")
    removed = next(e for e in trail if e["kind"] == "agent.deleted")
    assert removed["actor"] == updated["actor"]


DEPRECATED = "query Old { agents { id llmProvider { model } } }"


def _usage(rows: list[dict[str, Any]], tenant_id: str) -> dict[str, int]:
    return {r["field"]: r["count"] for r in rows if r.get("tenant_id", tenant_id) == tenant_id}


def _until(check: Any, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


@SQLITE_ONLY
def test_deprecated_field_use_is_counted_per_tenant_and_announced(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    gateway.new_agent(a)
    uses_a = 6
    for _ in range(uses_a):
        reply = gateway.http.post("/graphql", json={"query": DEPRECATED}, headers=a.headers())
        assert reply.status_code == 200 and "errors" not in reply.json(), reply.text
        deprecation, sunset = reply.headers["Deprecation"], reply.headers["Sunset"]
    assert deprecation.startswith("@")
    since = dt.datetime.fromtimestamp(int(deprecation[1:]), dt.UTC)
    assert parsedate_to_datetime(sunset) > since
    explained = graphql(
        gateway,
        a.headers(),
        '{ __type(name: "Query") { fields('
        "includeDeprecated: true) { name isDeprecated deprecationReason } } }",
    )
    agents_field = next(f for f in explained["data"]["__type"]["fields"] if f["name"] == "agents")
    assert agents_field["isDeprecated"] and "agentList" in agents_field["deprecationReason"]
    assert parsedate_to_datetime(sunset).date().isoformat() in agents_field["deprecationReason"]

    only_new = gateway.http.post("/graphql", json={"query": "{ agentList { totalCount } }"},
                                 headers=b.headers())  # fmt: skip
    assert only_new.status_code == 200 and "Deprecation" not in only_new.headers
    skipped = gateway.http.post("/graphql", headers=b.headers(), json={
        "query": "query ($old: Boolean!) { health agents @include(if: $old) { id } }",
        "variables": {"old": False}})  # fmt: skip
    assert "Deprecation" not in skipped.headers
    invalid = gateway.http.post("/graphql", json={"query": "{ agents { nope } }"},
                                headers=b.headers())  # fmt: skip
    assert "Deprecation" not in invalid.headers  # never executed: not a use
    once = gateway.http.post("/graphql", json={"query": "{ agents { id } }"}, headers=b.headers())
    assert "Deprecation" in once.headers

    expected_a = {"Query.agents": uses_a, "AgentDefinitionGQL.llmProvider": uses_a}
    query = (
        "{ deprecatedUsage { tenantId field count firstUsedAt lastUsedAt replacement sunsetOn } }"
    )

    def seen_by(tenant: Tenant) -> list[dict[str, Any]]:
        return graphql(gateway, tenant.headers(), query)["data"]["deprecatedUsage"]

    # every replica records within seconds; each tenant sees its own rows only
    rows_a = _until(lambda: (r := seen_by(a)) and _usage(r, a.id) == expected_a and r)
    assert _usage(rows_a, a.id) == expected_a and {r["tenantId"] for r in rows_a} == {a.id}
    agents_row = next(r for r in rows_a if r["field"] == "Query.agents")
    assert "agentList" in agents_row["replacement"] and agents_row["sunsetOn"]
    assert agents_row["firstUsedAt"] <= agents_row["lastUsedAt"]
    rows_b = _until(lambda: (r := seen_by(b)) and _usage(r, b.id) == {"Query.agents": 1} and r)
    assert _usage(rows_b, b.id) == {"Query.agents": 1} and {r["tenantId"] for r in rows_b} == {
        b.id}  # fmt: skip

    # REST: the tenant's own, and every tenant's for the platform admin
    own = gateway.http.get("/api/v1/deprecations/usage", headers=a.headers())
    assert own.status_code == 200
    assert _usage(own.json()["usage"], a.id) == expected_a
    assert {r["tenant_id"] for r in own.json()["usage"]} == {a.id}
    assert "Query.agents" in {d["field"] for d in own.json()["deprecations"]}
    every = gateway.http.get("/api/v1/admin/deprecations/usage", headers=gateway.admin).json()
    assert _usage(every["usage"], a.id) == expected_a
    assert _usage(every["usage"], b.id) == {"Query.agents": 1}
    just_b = gateway.http.get(f"/api/v1/admin/deprecations/usage?tenant_id={b.id}",
                              headers=gateway.admin).json()["usage"]  # fmt: skip
    assert {r["tenant_id"] for r in just_b} == {b.id}
    assert gateway.http.get("/api/v1/admin/deprecations/usage",
                            headers=a.headers()).status_code == 401  # fmt: skip
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{a.id}/api-keys",
        json={"scopes": ["agents:read"]},
        headers=gateway.admin,
    )
    reader = a.headers(issued.json()["api_key"])
    assert gateway.http.get("/api/v1/deprecations/usage", headers=reader).status_code == 403
    refused = graphql(gateway, reader, query)
    assert "analytics:read" in refused["errors"][0]["message"]

    # the uses are stored as events, batched: fewer events than uses
    events = [e for _, e in stored_events(gateway.settings)
              if type(e).__qualname__ == "DeprecatedUsage.Recorded"
              and any(r["tenant_id"] == a.id for r in e.rows)]  # fmt: skip
    assert (
        sum(
            r["count"]
            for e in events
            for r in e.rows
            if r["tenant_id"] == a.id and r["field"] == "Query.agents"
        )
        == uses_a
    )
    assert 1 <= len(events) < uses_a


# the app mounted under /pg (the SQLite app, at /, is covered above)
@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_execution_endpoints_carry_the_apps_route_prefix(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    only = ONE.replace(FIELDS, "executionEndpoints { history }")
    found = graphql(gateway, tenant.headers(), only, id=agent["id"])
    history = found["data"]["agent"]["executionEndpoints"]["history"]
    assert history.startswith(str(gateway.http.base_url).rstrip("/") + "/api/v1/executions")
    assert gateway.http.get(history, headers=tenant.headers()).json() == {
        "executions": [], "next_before": None}  # fmt: skip
