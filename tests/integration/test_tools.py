"""The tool loop on the real gateway: MCP servers over stdio and HTTP, built-in tools, the
reference agents' scenarios, and what happens when tools fail."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.market import DATES, MOVES, VOLUMES
from tests.support.sse import read_events, stream

EVERYTHING = "@modelcontextprotocol/server-everything@2026.8.31"
NPM_DIR = Path.home() / ".cache" / "circuit-breaker" / "npm"


@pytest.fixture(scope="session")
def everything_js() -> str:
    """The real `server-everything` MCP server from npm, installed once per machine."""
    script = NPM_DIR / "node_modules/@modelcontextprotocol/server-everything/dist/index.js"
    if not script.exists():
        NPM_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent", EVERYTHING],
            cwd=NPM_DIR,
            check=True,
            timeout=300,
        )
    return str(script)


@pytest.fixture(scope="session")
def everything_http(everything_js: str) -> Iterator[str]:
    """The same server over streamable HTTP on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        ["node", everything_js, "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "no MCP server"
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(10)


def _tag(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _register(gateway: ApiClient, tenant: Tenant, **server: Any) -> dict[str, Any]:
    reply = gateway.http.post("/api/v1/mcp/servers", json=server, headers=tenant.headers())
    assert reply.status_code == 201, reply.text
    return reply.json()


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": arguments}


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_an_mcp_server_is_discovered_and_its_tool_called_in_the_loop(
    gateway: ApiClient, transport: str, everything_js: str, everything_http: str
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    server = (
        {"command": "node", "args": [everything_js, "stdio"], "env": {"SECRET_TOKEN": "s3cret"}}
        if transport == "stdio"
        else {"url": everything_http, "bearer_token": "tok-123"}
    )
    made = _register(gateway, tenant, name="everything", transport=transport, **server)
    assert made["health"]["status"] == "ready" and made["tool_count"] >= 5
    assert "s3cret" not in json.dumps(made) and "tok-123" not in json.dumps(made)

    tools = gateway.http.get("/api/v1/tools", headers=tenant.headers()).json()["tools"]
    by_name = {t["name"]: t for t in tools}
    assert by_name["get-sum"]["source"] == "everything"
    assert by_name["get-sum"]["input_schema"]["required"] == ["a", "b"]
    assert by_name["mortgage_calculator"]["source"] == "builtin"

    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["get-sum"])
    tag = _tag("sum")
    emu.script(tag, content="The answer is", with_tool_results=True)
    emu.script(tag, tool_calls=[_call("get-sum", a=2, b=40)], times=1)
    result = gateway.execute(tenant, agent["id"], tag).json()
    assert result["status"] == "completed", result
    assert "The sum of 2 and 40 is 42." in result["response"]["content"]
    [used] = result["response"]["tool_results"]
    assert used["name"] == "get-sum" and used["arguments"] == {"a": 2, "b": 40}
    assert used["error"] is None and "42" in str(used["result"])
    assert result["metadata"]["tool_calls"] == 1 and result["metadata"]["tool_errors"] == 0

    first, second = emu.requests_matching(tag)
    assert [t["function"]["name"] for t in first.body["tools"]] == ["get-sum"]
    assert second.body["messages"][-2]["tool_calls"][0]["function"]["name"] == "get-sum"
    assert second.body["messages"][-1]["role"] == "tool"

    topics = [e.topic.rsplit(".", 1)[-1] for e in _events(gateway, result["execution_id"])]
    assert (
        topics.index("ToolCalled") < topics.index("ToolResultRecorded") < topics.index("Completed")
    )


@SQLITE_ONLY
def test_a_tenant_mcp_servers_are_invisible_and_unusable_for_another(
    gateway: ApiClient, everything_js: str
) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    made = _register(
        gateway, a, name="everything", transport="stdio", command="node",
        args=[everything_js, "stdio"],
    )  # fmt: skip
    names_b = {
        t["name"] for t in gateway.http.get("/api/v1/tools", headers=b.headers()).json()["tools"]
    }
    assert "get-sum" not in names_b and "mortgage_calculator" in names_b
    assert gateway.http.get("/api/v1/mcp/servers", headers=b.headers()).json()["servers"] == []
    denied = gateway.http.post(
        "/api/v1/agents",
        json={"name": "x", "model": "gpt-4o-mini", "tools": ["get-sum"]},
        headers=b.headers(),
    )
    assert denied.status_code == 400 and denied.json()["error"]["type"] == "unknown_tool"
    gone = gateway.http.delete(f"/api/v1/mcp/servers/{made['id']}", headers=b.headers())
    assert gone.status_code == 404
    mine = gateway.http.delete(f"/api/v1/mcp/servers/{made['id']}", headers=a.headers())
    assert mine.status_code == 200
    names_a = {
        t["name"] for t in gateway.http.get("/api/v1/tools", headers=a.headers()).json()["tools"]
    }
    assert "get-sum" not in names_a


def _processes_with(mark: str) -> list[int]:
    """Pids of the processes whose environment holds `mark` (a tenant's stdio servers)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and mark.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _tool_use(gateway: ApiClient, tenant: Tenant, agent_id: str, call: dict[str, Any]) -> Any:
    """One execution in which the model calls `call` once; that call as recorded."""
    emu, tag = gateway.cluster.emulator, _tag("turn")
    emu.script(tag, content="Done:", with_tool_results=True)
    emu.script(tag, tool_calls=[call], times=1)
    result = gateway.execute(tenant, agent_id, tag).json()
    assert result["status"] == "completed", result
    [used] = result["response"]["tool_results"]
    return used


def _tool_turn(gateway: ApiClient, tenant: Tenant, agent_id: str, call: dict[str, Any]) -> Any:
    """One execution in which the model calls `call` once; that call's result."""
    used = _tool_use(gateway, tenant, agent_id, call)
    assert used["error"] is None, used
    return used["result"]


@SQLITE_ONLY
def test_a_stdio_server_gets_only_its_own_environment_and_its_secrets_stay_sealed(
    gateway: ApiClient, everything_js: str
) -> None:
    tenant, mark = gateway.new_tenant(), _tag("mark")
    _register(
        gateway, tenant, name="env", transport="stdio", command="node",
        args=[everything_js, "stdio"], env={"SECRET_TOKEN": "s3cret-env", "MARK": mark},
    )  # fmt: skip
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["get-env"])
    env = json.loads(_tool_turn(gateway, tenant, agent["id"], _call("get-env")))
    assert env["SECRET_TOKEN"] == "s3cret-env" and env["MARK"] == mark
    leaked = [k for k in env if k.startswith(("CB_", "OPENAI", "ANTHROPIC", "RAY_"))]
    assert leaked == [] and "PATH" in env

    events = _events(gateway, tenant.id)
    assert any(e.topic.endswith("McpServerRegistered") for e in events)
    stored = b"".join(e.state for e in events)
    assert b"MARK" not in stored and b"s3cret-env" not in stored  # sealed, names too


def _events(gateway: ApiClient, aggregate_id: str) -> list[Any]:
    from actors.event_store import EventStore

    store = EventStore(env=gateway.settings.store_env())
    try:
        return list(store.recorder.select_events(uuid.UUID(aggregate_id)))
    finally:
        store.close()


@SQLITE_ONLY
def test_a_session_is_reused_reopened_after_its_process_dies_and_ended_on_removal(
    gateway: ApiClient, everything_js: str
) -> None:
    tenant, mark = gateway.new_tenant(), _tag("mark")
    made = _register(
        gateway, tenant, name="everything", transport="stdio", command="node",
        args=[everything_js, "stdio"], env={"MARK": mark},
    )  # fmt: skip
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["get-sum"])
    [pid] = _processes_with(mark)
    for a in (1, 2):
        assert "3" in str(_tool_turn(gateway, tenant, agent["id"], _call("get-sum", a=a, b=3 - a)))
    assert _processes_with(mark) == [pid]  # one process served both executions

    os.kill(pid, 9)
    deadline = time.monotonic() + 10
    while pid in _processes_with(mark):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    used = _tool_use(gateway, tenant, agent["id"], _call("get-sum", a=3, b=4))
    if used["error"] is not None:  # the actor had not read the dead process's end yet (a busy
        assert used["error"]["message"] == "MCPError: Connection closed"  # machine): that one
        used = _tool_use(gateway, tenant, agent["id"], _call("get-sum", a=3, b=4))  # call fails
    assert used["error"] is None and "7" in str(used["result"]), used  # and the next reopens
    [again] = _processes_with(mark)
    assert again != pid
    [listed] = gateway.http.get("/api/v1/mcp/servers", headers=tenant.headers()).json()["servers"]
    assert listed["health"]["status"] == "ready"

    gateway.http.delete(f"/api/v1/mcp/servers/{made['id']}", headers=tenant.headers())
    deadline = time.monotonic() + 10
    while _processes_with(mark):
        assert time.monotonic() < deadline, "the server's process outlived its removal"
        time.sleep(0.1)


GQL_REGISTER = """
mutation Register($input: McpServerInput!) {
  registerMcpServer(input: $input) { id name transport envKeys toolCount health { status } }
}
"""


@SQLITE_ONLY
def test_graphql_registers_lists_and_removes_mcp_servers(
    gateway: ApiClient, everything_js: str
) -> None:
    from tests.support.graphql import graphql

    tenant = gateway.new_tenant()
    server = {
        "name": "gql", "transport": "stdio", "command": "node", "args": [everything_js, "stdio"],
        "env": [{"key": "TOKEN", "value": "gql-secret"}],
    }  # fmt: skip
    made = graphql(gateway, tenant.headers(), GQL_REGISTER, input=server)
    assert "errors" not in made, made
    registered = made["data"]["registerMcpServer"]
    assert registered["envKeys"] == ["TOKEN"] and registered["health"]["status"] == "ready"
    listed = graphql(
        gateway, tenant.headers(), "{ mcpServers { id envKeys } tools { name source } }"
    )["data"]
    assert listed["mcpServers"] == [{"id": registered["id"], "envKeys": ["TOKEN"]}]
    assert {"name": "get-sum", "source": "gql"} in listed["tools"]
    assert "gql-secret" not in json.dumps(listed)

    bad = graphql(gateway, tenant.headers(), GQL_REGISTER, input={**server, "command": None})
    assert "a stdio server needs `command`" in bad["errors"][0]["message"]
    removed = graphql(
        gateway, tenant.headers(), "mutation R($id: String!) { removeMcpServer(id: $id) }",
        id=registered["id"],
    )  # fmt: skip
    assert removed["data"]["removeMcpServer"] is True
    after = graphql(gateway, tenant.headers(), "{ mcpServers { id } }")["data"]
    assert after["mcpServers"] == []


@SQLITE_ONLY
def test_a_stdio_command_outside_the_allowed_list_is_refused(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    for command in ("bash", "/tmp/evil/node"):
        reply = gateway.http.post(
            "/api/v1/mcp/servers",
            json={"name": "x", "transport": "stdio", "command": command},
            headers=tenant.headers(),
        )
        assert reply.status_code == 403, reply.text
        assert reply.json()["error"]["type"] == "permission_denied"
    listed = gateway.http.get("/api/v1/mcp/servers", headers=tenant.headers()).json()
    assert listed["servers"] == []


def _reference_agents(gateway: ApiClient, tenant: Tenant) -> dict[str, dict[str, Any]]:
    path = f"/api/v1/admin/tenants/{tenant.id}/reference-agents"
    first = gateway.http.post(path, headers=gateway.admin)
    assert first.status_code == 200, first.text
    again = gateway.http.post(path, headers=gateway.admin).json()
    assert first.json()["created"] == 4 and again["created"] == 0
    assert [a["id"] for a in again["agents"]] == [a["id"] for a in first.json()["agents"]]
    return {a["name"]: a for a in again["agents"]}


def test_the_real_estate_scenario_streams_its_tool_calls_and_answers_from_them(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = _reference_agents(gateway, tenant)["Real Estate Investment Analyzer"]
    assert agent["tools"] == ["mortgage_calculator", "roi_calculator"]
    tag = _tag("estate")
    emu.script(tag, content="Recommendation, from the numbers:", with_tool_results=True)
    mortgage = _call(
        "mortgage_calculator", price=450000, down_payment=90000, annual_rate_percent=7.2,
        term_years=30, property_tax_annual=5400, insurance_annual=1200,
    )  # fmt: skip
    roi = _call(
        "roi_calculator", purchase_price=450000, monthly_rent=2800, down_payment=90000,
        annual_rate_percent=7.2, term_years=30, vacancy_rate_percent=5.0,
        property_management_percent=8.0, property_tax_annual=5400, insurance_annual=1200,
        maintenance_monthly=300, appreciation_rate_percent=4.5, rent_growth_rate_percent=3.2,
        years=5,
    )  # fmt: skip
    emu.script(tag, tool_calls=[mortgage, roi], times=1)

    with stream(gateway, tenant, agent["id"], f"{tag} Analyze 123 Investment Lane") as reply:
        events = read_events(reply)
    kinds = [e["event"] for e in events if e["event"] not in ("heartbeat", "usage_update")]
    assert kinds[0] == "execution_start" and kinds[-1] == "execution_complete", kinds
    assert kinds[1:5] == ["tool_call", "tool_call", "tool_result", "tool_result"], kinds
    assert kinds.index("content_chunk") > 4
    ids = [e["id"] for e in events if "id" in e]
    assert ids == list(range(1, len(ids) + 1))
    results = {
        e["data"]["name"]: e["data"]["result"] for e in events if e["event"] == "tool_result"
    }
    assert results["mortgage_calculator"]["loan_amount"] == 360000
    assert results["mortgage_calculator"]["monthly_payment"] == pytest.approx(2443.64, abs=0.01)
    assert results["roi_calculator"]["gross_annual_rent"] == 33600
    final = events[-1]["data"]
    assert "2443.64" in final["response"]["content"]  # the answer carries the tool results
    assert final["metadata"]["tool_calls"] == 2 and final["usage"]["total_tokens"] > 0
    sent = emu.requests_matching(tag)[0].body
    assert sent["model"] == "o4-mini" and "temperature" not in sent  # cb:analysis: reasoning
    assert sent["messages"][0]["content"].startswith("You are an expert real estate")


def test_the_pattern_scenario_flags_january_17(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = _reference_agents(gateway, tenant)["Pattern Recognition Specialist"]
    tag = _tag("pattern")
    emu.script(tag, content="Anomaly:", with_tool_results=True)
    emu.script(
        tag,
        tool_calls=[
            _call("statistical_analyzer", values=VOLUMES, labels=DATES, second_series=MOVES)
        ],
        times=1,
    )
    result = gateway.execute(tenant, agent["id"], f"{tag} Market Anomaly Detection").json()
    assert result["status"] == "completed", result
    [used] = result["response"]["tool_results"]
    outliers = used["result"]["outliers"]
    assert [o["label"] for o in outliers] == ["2024-01-17"]
    assert outliers[0]["value"] == 3200000 and {"z_score", "iqr"} <= set(outliers[0]["reasons"])
    assert [o["label"] for o in used["result"]["second_series_outliers"]] == ["2024-01-17"]
    assert "2024-01-17" in result["response"]["content"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    "name", ["Mathematical Reasoning Specialist", "Strategic Decision Advisor"]
)
def test_the_agents_without_tools_answer_with_their_own_prompt(
    gateway: ApiClient, name: str
) -> None:
    tenant = gateway.new_tenant()
    agent = _reference_agents(gateway, tenant)[name]
    tag = _tag("ref")
    result = gateway.execute(tenant, agent["id"], f"{tag} Prove the identity is unique.").json()
    assert result["status"] == "completed" and "tool_calls" not in result["metadata"]
    sent = gateway.cluster.emulator.requests_matching(tag)[0].body
    assert "tools" not in sent
    assert sent["messages"][0]["content"] == agent["system_prompt"]


@SQLITE_ONLY
def test_tool_errors_unknown_tools_and_timeouts_are_told_to_the_model(
    gateway: ApiClient, everything_js: str
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    _register(
        gateway, tenant, name="slow", transport="stdio", command="node",
        args=[everything_js, "stdio"], timeout_s=1,
    )  # fmt: skip
    tools = ["mortgage_calculator", "trigger-long-running-operation"]
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=tools)
    tag = _tag("fail")
    emu.script(tag, content="Sorry:", with_tool_results=True)
    emu.script(
        tag,
        tool_calls=[
            _call("mortgage_calculator", price=100, down_payment=200, annual_rate_percent=5,
                  term_years=30),
            _call("no_such_tool", x=1),
            _call("trigger-long-running-operation", duration=4, steps=2),
        ],
        times=1,
    )  # fmt: skip
    result = gateway.execute(tenant, agent["id"], tag).json()
    assert result["status"] == "completed", result
    errors = {r["name"]: r["error"]["type"] for r in result["response"]["tool_results"]}
    assert errors == {
        "mortgage_calculator": "invalid_arguments",
        "no_such_tool": "unknown_tool",
        "trigger-long-running-operation": "tool_timeout",
    }
    assert result["metadata"]["tool_errors"] == 3
    assert "down_payment" in result["response"]["content"]  # the model was told why


@SQLITE_ONLY
def test_a_model_that_never_stops_calling_tools_hits_the_cap(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini", tools=["statistical_analyzer"])
    tag = _tag("cap")
    emu.script(tag, tool_calls=[_call("statistical_analyzer", values=[1, 2, 3])])
    reply = gateway.execute(tenant, agent["id"], tag)
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["type"] == "tool_iteration_limit"
    assert len(emu.requests_matching(tag)) == 8
    stored = gateway.http.get(
        f"/api/v1/executions/{error['execution_id']}", headers=tenant.headers()
    ).json()
    assert stored["status"] == "failed"


@SQLITE_ONLY
def test_the_cli_installs_the_reference_agents_and_the_demo_tenant_is_made_once(
    gateway: ApiClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import cli
    from tests.support.cluster import ADMIN_TOKEN

    url = str(gateway.http.base_url)
    tenant = gateway.new_tenant()
    monkeypatch.setenv("CB_ADMIN_TOKEN", ADMIN_TOKEN)
    assert cli.main(["install-reference-agents", tenant.id, "--url", url]) == 0
    printed = capsys.readouterr().out
    assert "Real Estate Investment Analyzer  (cb:analysis)" in printed
    listed = gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]
    assert len(listed) == 4
    assert cli.main(["install-reference-agents", tenant.id, "--url", url]) == 0  # idempotent
    assert len(gateway.http.get("/api/v1/agents", headers=tenant.headers()).json()["agents"]) == 4
    monkeypatch.setenv("CB_ADMIN_TOKEN", "wrong")
    assert cli.main(["install-reference-agents", tenant.id, "--url", url]) == 1
    assert "401" in capsys.readouterr().out

    demo = cli.ensure_demo_tenant(url, ADMIN_TOKEN, tmp_path)
    saved = tmp_path / "demo-tenant.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert sorted(demo["agents"]) == [
        "Mathematical Reasoning Specialist", "Pattern Recognition Specialist",
        "Real Estate Investment Analyzer", "Strategic Decision Advisor",
    ]  # fmt: skip
    again = cli.ensure_demo_tenant(url, ADMIN_TOKEN, tmp_path)
    assert again == demo  # the same tenant and agents on the next start
    key = json.loads(saved.read_text())["api_key"]
    headers = Tenant(demo["tenant_id"], key).headers()
    assert len(gateway.http.get("/api/v1/agents", headers=headers).json()["agents"]) == 4
