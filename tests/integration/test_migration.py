"""`cb migrate import | verify | rollback` against the real cluster, reading a stand-in legacy
server (`tests/support/legacy_server.py`) or a file of its queries' results
(`tests/fixtures/legacy_system.json`): plan, import, legacy ids that resolve, idempotence,
verification (and a mismatch it catches), rollback that keeps what users made since, and
bad sources that import nothing."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

import cli
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.cluster import ADMIN_TOKEN
from tests.support.graphql import graphql as graphql_reply
from tests.support.legacy_server import LegacyServer

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_system.json"
TRIAGE, LOANS, POET = (f"4b1f6a52-2f7e-4c55-9d35-0c1e7d1f0a0{n}" for n in (1, 2, 3))
MAPS = ["--model-map", "gpt-3.5-turbo=gpt-4o-mini", "--model-map", "claude-2.1=cb:creative"]
LEGACY_TOKEN = "legacy-secret-token"
_URL = [""]  # the gateway the test's `cb migrate` commands go to


@pytest.fixture(autouse=True)
def gateway_url(gateway: ApiClient) -> None:
    _URL[0] = gateway.cluster.url(gateway.backend)


@pytest.fixture
def legacy() -> dict[str, Any]:
    return copy.deepcopy(json.loads(DATA.read_text()))


@pytest.fixture(autouse=True)
def admin_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_ADMIN_TOKEN", ADMIN_TOKEN)


def _cb(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    capsys.readouterr()
    status = cli.main(["migrate", *args, "--gateway", _URL[0]])
    return status, capsys.readouterr().out


def _migration_id(out: str) -> str:
    last = out.strip().splitlines()[-1]
    assert last.startswith("migration "), out
    return last.split()[1]


def _agents(gateway: ApiClient, tenant: Tenant) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/agents", headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()["agents"]


def graphql(gateway: ApiClient, headers: dict[str, str], query: str, **variables: Any) -> Any:
    """The query's data (it must have no errors)."""
    body = graphql_reply(gateway, headers, query, **variables)
    assert not body.get("errors"), body
    return body["data"]


def _lines_file(tmp_path: Path, name: str, *ids: str) -> str:
    path = tmp_path / name
    path.write_text("\n".join(ids) + "\n")
    return str(path)


def test_import_from_a_legacy_server_verify_rerun_and_roll_back(
    gateway: ApiClient, legacy: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    tenant = gateway.new_tenant()
    resources = _lines_file(tmp_path, "resources.txt", "ticket-77", "ticket-78", "loan-5")
    with LegacyServer(legacy, token=LEGACY_TOKEN) as server:
        source = ["--from-graphql", server.url, "--legacy-header",
                  f"Authorization: Bearer {LEGACY_TOKEN}", "--tenant", tenant.id,
                  "--resources", resources]  # fmt: skip

        # a dry run without model mappings: the plan, two unknown models, nothing imported
        status, out = _cb(capsys, "import", *source, "--dry-run")
        assert status == 1, out
        assert f"error        agent              {POET}: unknown model 'claude-2.1'" in out
        assert "--model-map gpt-3.5-turbo=" in out
        assert "would create agent" in out and "dry run: nothing was imported" in out
        assert _agents(gateway, tenant) == []

        # the real run, with mappings
        status, out = _cb(capsys, "import", *source, *MAPS)
        assert status == 0, out
        assert "agents: 3 to create" in out and "executions: 4 to create" in out
        assert "state_agent_configs: 2 to create" in out
        first = _migration_id(out)
        recorded = gateway.http.get(f"/api/v1/admin/migrations/{first}", headers=gateway.admin)
        assert recorded.status_code == 200 and recorded.json()["source"] == {
            "kind": "graphql", "url": server.url, "header_names": ["Authorization"]
        }  # fmt: skip
        assert LEGACY_TOKEN not in recorded.text  # the legacy credential is never kept

        # legacy ids resolve over REST and GraphQL, mapped fields as documented
        reply = gateway.http.get(f"/api/v1/agents/{LOANS}", headers=tenant.headers())
        assert reply.status_code == 200, reply.text
        loans = reply.json()
        assert loans["legacy_id"] == LOANS and loans["id"] != LOANS
        assert loans["model"] == "gpt-4o-mini" and loans["tools"] == ["mortgage_calculator"]
        assert loans["parameters"] == {
            "temperature": 0.7,
            "max_tokens": 1000,
            "frequency_penalty": 0.1,
            "presence_penalty": 0.2,
        }
        found = graphql(
            gateway, tenant.headers(),
            "query($id: String!) { agent(id: $id) { id name llmProvider { model } } }", id=POET,
        )  # fmt: skip
        assert found["agent"]["name"] == "Poet"
        assert found["agent"]["llmProvider"]["model"] == "cb:creative"

        # imported executions: original times, status, input and output; no cost
        reply = gateway.http.get("/api/v1/executions/exec-1001", headers=tenant.headers())
        assert reply.status_code == 200, reply.text
        done = reply.json()
        assert done["kind"] == "imported" and done["status"] == "completed"
        assert done["started_at"] == 1748779200.0 and done["duration_ms"] == 1250
        assert done["usage"]["cost_usd"] == 0 and done["usage"]["total_tokens"] == 0
        assert done["agent_id"] != TRIAGE and done["metadata"]["imported"]["legacy_id"] == (
            "exec-1001"
        )
        assert "no LLM call" in done["metadata"]["imported"]["note"]
        timed_out = graphql(
            gateway, tenant.headers(),
            'query { agentExecution(id: "exec-1003") { status errorMessage inputData agentId } }',
        )["agentExecution"]  # fmt: skip
        assert timed_out["status"] == "TIMEOUT"
        assert timed_out["errorMessage"] == "timed out after 30s"
        assert timed_out["inputData"] == {"message": "Rate for 20 years?"}
        assert timed_out["agentId"] == loans["id"]
        configs = graphql(
            gateway, tenant.headers(),
            'query { stateAgentConfigs(stateId: "ticket-new") { agentId autoActivity'
            " retryConfig { maxAttempts } } }",
        )["stateAgentConfigs"]  # fmt: skip
        assert [c["agentId"] for c in configs] == [done["agent_id"]]
        assert configs[0]["retryConfig"]["maxAttempts"] == 2

        # a user runs an imported agent (a real model call) and makes an agent of their own
        ran = gateway.execute(tenant, loans["id"], "How do mortgages work?")
        assert ran.status_code == 200 and ran.json()["status"] == "completed", ran.text
        own = gateway.new_agent(tenant, name="Made after the import")

        auth = ["--legacy-header", f"Authorization: Bearer {LEGACY_TOKEN}"]
        status, out = _cb(capsys, "verify", first, *auth)
        assert status == 0, out
        assert "the legacy server (re-read)" in out and out.strip().endswith("OK")
        assert "agents: 3 checked, 3 matching, 0 mismatched" in out

        # running it again imports nothing new
        status, out = _cb(capsys, "import", *source, *MAPS)
        assert status == 0, out
        assert "agents: 0 to create, 3 already imported" in out
        assert "executions: 0 to create, 4 already imported" in out
        assert len(_agents(gateway, tenant)) == 4

        # a change on the legacy side is a mismatch verify reports (and exits non-zero)
        legacy["agents"][2]["description"] = "Writes free verse"
        status, out = _cb(capsys, "verify", first, *auth)
        assert status == 1, out
        assert f"MISMATCH  agent {POET}" in out and "description: source 'Writes free verse'" in out
        legacy["agents"][2]["description"] = "Writes verse"

        status, out = _cb(capsys, "rollback", first)
        assert status == 0, out
        assert "3 agents removed" in out and "4 executions removed" in out
        assert "2 state_agent_configs removed" in out and "including 1 executions" in out

        status, out = _cb(capsys, "verify", first)
        assert status == 0, out
        assert "rolled back: nothing left" in out

    assert [a["id"] for a in _agents(gateway, tenant)] == [own["id"]]
    gone = gateway.http.get("/api/v1/executions/exec-1001", headers=tenant.headers())
    assert gone.status_code == 404
    kept = gateway.http.get(f"/api/v1/executions/{ran.json()['execution_id']}",
                            headers=tenant.headers())  # fmt: skip
    assert kept.status_code == 200 and kept.json()["status"] == "completed"
    assert graphql(gateway, tenant.headers(), 'query { stateAgentConfigs(stateId: "ticket-new")'
                   " { id } }")["stateAgentConfigs"] == []  # fmt: skip


@SQLITE_ONLY
def test_import_from_a_file_verifies_against_the_copies_kept(
    gateway: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = gateway.new_tenant()
    args = ["--from-file", str(DATA), "--tenant", tenant.id, *MAPS]
    status, out = _cb(capsys, "import", *args)
    assert status == 0, out
    migration = _migration_id(out)
    assert "executions: 4 to create" in out
    status, out = _cb(capsys, "verify", migration)
    assert status == 0 and "the copies kept at import" in out, out
    assert "executions: 4 checked, 4 matching" in out
    status, out = _cb(capsys, "rollback", migration)
    assert status == 0, out
    status, out = _cb(capsys, "verify", migration)
    assert status == 0 and "rolled back: nothing left" in out, out
    assert _agents(gateway, tenant) == []

    # erasing the tenant erases its migrations and what they imported (retracted or not)
    erased = gateway.http.delete(f"/api/v1/admin/tenants/{tenant.id}", headers=gateway.admin)
    assert erased.status_code == 200, erased.text
    gone = gateway.http.get(f"/api/v1/admin/migrations/{migration}", headers=gateway.admin)
    assert gone.status_code == 404


@SQLITE_ONLY
def test_bad_sources_import_nothing_and_a_rerun_finishes(
    gateway: ApiClient, legacy: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    tenant = gateway.new_tenant()
    common = ["--tenant", tenant.id, *MAPS]

    status, out = _cb(capsys, "import", "--from-graphql", "http://127.0.0.1:9/graphql", *common)
    assert status == 2 and "did not answer" in out, out

    broken = tmp_path / "broken.json"
    broken.write_text('{"agents": [')
    status, out = _cb(capsys, "import", "--from-file", str(broken), *common)
    assert status == 2 and "is not JSON" in out, out
    broken.write_text('{"agents": {"id": "x"}}')
    status, out = _cb(capsys, "import", "--from-file", str(broken), *common)
    assert status == 2 and "agents must be a list of objects" in out, out

    with LegacyServer(legacy) as server:
        server.fail_after = 2  # the agent list and one agent, then the server is gone
        status, out = _cb(capsys, "import", "--from-graphql", server.url, *common)
        assert status == 2 and "did not answer" in out, out
        assert _agents(gateway, tenant) == []
        server.fail_after = None
        status, out = _cb(capsys, "import", "--from-graphql", server.url, *common)
        assert status == 0, out
    assert len(_agents(gateway, tenant)) == 3

    # a run cut short after its first part is incomplete; a rerun imports the rest
    records = legacy["executions"]
    part = {"agents": [], "executions": records[:2], "final": False}
    admin = gateway.admin
    reply = gateway.http.post(f"/api/v1/admin/tenants/{tenant.id}/migrations", json=part,
                              headers=admin)  # fmt: skip
    assert reply.status_code == 201, reply.text
    cut = reply.json()["migration_id"]
    status, out = _cb(capsys, "verify", cut)
    assert status == 1 and "INCOMPLETE" in out, out
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"executions": [*records, records[3]]}))
    status, out = _cb(capsys, "import", "--from-file", str(path), *common)
    assert status == 0 and "executions: 2 to create, 3 already imported" in out, out
    assert "exec-1004: given twice in the source" in out

    unknown = gateway.http.get(f"/api/v1/admin/migrations/{tenant.id}", headers=admin)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    refused = gateway.http.post(f"/api/v1/admin/tenants/{tenant.id}/migrations",
                                json={"agents": "nope"}, headers=admin)  # fmt: skip
    assert refused.status_code == 400


@SQLITE_ONLY
def test_compare_runs_an_operation_over_graphql_and_rest(
    gateway: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    auth = ["--api-key", tenant.api_key, "--tenant", tenant.id]
    status, out = _cb(capsys, "compare", agent["id"], "--operation", "get", "-n", "3", *auth)
    assert status == 0, out
    assert "graphql agent(id)                3      0" in out and "same results" in out
    status, out = _cb(capsys, "compare", agent["id"], "--operation", "execute", "-n", "2", *auth)
    assert status == 0, out
    assert "REST execute                     2      0" in out and "both answered" in out
    status, out = _cb(capsys, "compare", agent["id"], "-n", "1", "--api-key", "wrong",
                      "--tenant", tenant.id)  # fmt: skip
    assert status == 1 and "HTTP 401" in out, out
