"""`cb scenarios run` against the gateway: every PED §13.1 scenario sent to its reference
agent in its PED form, and the §13.2 cross-agent one run as a collaboration (the pattern
analysis reaches the strategic advisor's prompt with the constraints, and the synthesis is
the run's output); answers, tool calls, usage and cost printed."""

from __future__ import annotations

import json
import uuid

import pytest

import cli
from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.cluster import ADMIN_TOKEN

MARKET = '"scenario": "Market Anomaly Detection"'
HOUSE = '"address": "123 Investment Lane, Austin, TX"'


@SQLITE_ONLY
def test_every_ped_scenario_runs_and_the_cross_agent_one_as_a_collaboration(
    gateway: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    emu, tenant, tag = gateway.cluster.emulator, gateway.new_tenant(), uuid.uuid4().hex[:10]
    installed = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/reference-agents",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert installed.status_code == 200, installed.text
    emu.script(MARKET, content=f"PATTERN-{tag}: 2024-01-17 is the outlier.", with_tool_results=True)
    analyse = {"name": "statistical_analyzer", "arguments": {"values": [1200000, 3200000, 1190000]}}
    emu.script(MARKET, tool_calls=[analyse], times=1)  # the one-agent scenario's first turn
    emu.script(f"PATTERN-{tag}", content=f"DECISION-{tag}: a small momentum position.")
    emu.script(HOUSE, content="Worth it:", with_tool_results=True)
    mortgage = {
        "name": "mortgage_calculator",
        "arguments": {
            "price": 450000,
            "down_payment": 90000,
            "annual_rate_percent": 7.2,
            "term_years": 30,
        },
    }
    emu.script(HOUSE, tool_calls=[mortgage], times=1)

    base = str(gateway.http.base_url).rstrip("/")
    code = cli.main(
        ["scenarios", "run", "--url", base, "--tenant", tenant.id, "--api-key", tenant.api_key]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    for scenario in cli.load_scenarios():
        assert f"== {scenario.name}: " in printed
    assert printed.count("cost $") == 5
    assert "-- tool statistical_analyzer(" in printed and "-- tool mortgage_calculator(" in printed
    assert '"monthly_payment": 2443.64' in printed  # the tool's real answer, printed

    # each one-agent scenario reached its agent in its PED form
    for scenario in cli.load_scenarios():
        if scenario.agent is None:
            continue
        sent = [r for r in emu.requests_matching(json.dumps(scenario.input, indent=2)[:80])]
        assert sent, scenario.name

    # the cross-agent one: a collaboration whose synthesis is its output
    [run] = gateway.http.get("/api/v1/collaboration-runs", headers=tenant.headers()).json()["runs"]
    assert run["status"] == "completed" and run["name"] == "Multi-Agent Problem Solving"
    full = gateway.http.get(f"/api/v1/collaboration-runs/{run['run_id']}", headers=tenant.headers())
    body = full.json()
    assert body["output"] == f"DECISION-{tag}: a small momentum position."
    assert f"DECISION-{tag}" in printed
    [decision] = emu.requests_matching(f"PATTERN-{tag}")
    prompt = decision.body["messages"][-1]["content"]
    assert prompt.startswith("Challenge: Multi-Agent Problem Solving")
    assert f"PATTERN-{tag}: 2024-01-17 is the outlier." in prompt
    assert '"max_position_size": 100000' in prompt and "Risk-adjusted momentum" in prompt
    assert decision.body["messages"][0]["content"].startswith("You are a strategic consultant")
    steps = {s["id"]: s for s in body["steps"]}
    pattern_prompt = steps["pattern_analysis"]["input"]
    assert json.loads(pattern_prompt)["scenario"] == "Market Anomaly Detection"


@SQLITE_ONLY
def test_an_unknown_scenario_or_a_tenant_without_the_agents_is_told(
    gateway: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    tenant = gateway.new_tenant()
    base = str(gateway.http.base_url).rstrip("/")
    login = ["--url", base, "--tenant", tenant.id, "--api-key", tenant.api_key]
    assert cli.main(["scenarios", "run", "no-such", *login]) == 2
    assert "unknown scenarios ['no-such']" in capsys.readouterr().out
    assert cli.main(["scenarios", "run", "startup-pivot", *login]) == 1
    assert "cb install-reference-agents" in capsys.readouterr().out
