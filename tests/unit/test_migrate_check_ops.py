"""`cb migrate check-ops`: GraphQL operations found in legacy client sources, checked against
the served schema (tests/fixtures/legacy_clients holds the sources and the expected report)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from graphql import build_schema, introspection_from_schema

from migration import graphql_ops
from migration.graphql_ops import SCHEMA_FILE, check_ops_main

DATA = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_clients"


@pytest.fixture
def in_data(monkeypatch):
    monkeypatch.chdir(DATA)


def by_name(operations: list[dict], path: str, name: str) -> dict:
    return next(op for op in operations if op["path"] == path and op["name"] == name)


def test_report_matches_the_expected_one(in_data, capsys):
    status = check_ops_main(["."])

    assert status == 1  # some operations are invalid
    assert capsys.readouterr().out == (DATA / "check_ops.expected").read_text()


def test_json_report_gives_status_replacement_removal_date_and_fix(in_data, capsys):
    assert check_ops_main(["operations.graphql", "agent_app.ts"], as_json=True) == 1
    body = json.loads(capsys.readouterr().out)
    ops = body["operations"]

    assert body["summary"] == {"valid": 4, "deprecated": 4, "invalid": 3, "total": 11}
    chat = by_name(ops, "operations.graphql", "Chat")
    assert chat["status"] == "deprecated" and chat["line"] == 23
    assert chat["deprecations"] == [
        {
            "coordinate": "Mutation.llmChatCompletion",
            "replacement": "`POST /v1/chat/completions`",
            "deprecated_on": "2026-12-02",
            "removed_after": "2027-06-30",
            "line": 24,
        }
    ]
    servers = by_name(ops, "operations.graphql", "Servers")
    assert servers["status"] == "invalid"
    assert "registerMcpServer" in servers["errors"][0]["fix"]
    budget = by_name(ops, "operations.graphql", "Budget")
    assert budget["errors"][0]["line"] == 39
    assert "`remaining`" in budget["errors"][0]["fix"]
    # the fragment defined beside the operations, with its own deprecated field
    fragment = by_name(ops, "operations.graphql", "fragment AgentBasics")
    assert fragment["deprecations"][0]["coordinate"] == "AgentDefinitionGQL.llmProvider"
    # a legacy alias the gateway accepts: valid, with the fix as a note
    get_agent = by_name(ops, "agent_app.ts", "GetAgent")
    assert get_agent["status"] == "valid" and get_agent["line"] == 14
    assert "declare $id as String!" in get_agent["notes"][0]


def test_exit_zero_when_every_operation_is_valid(tmp_path, capsys):
    (tmp_path / "ok.graphql").write_text("query Health { health }\n")
    (tmp_path / "app.py").write_text(
        'Q = "query Tools { tools { name } }"\nNOT_GRAPHQL = "query me"\n'
    )

    assert check_ops_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{tmp_path / 'ok.graphql'}:1: valid Health" in out
    assert f"{tmp_path / 'app.py'}:1: valid Tools" in out
    assert out.endswith("2 checked: 2 valid, 0 deprecated, 0 invalid\n")


def test_deprecated_only_still_exits_zero(tmp_path, capsys):
    (tmp_path / "q.graphql").write_text("query All { agents { id } }\n")

    assert check_ops_main([str(tmp_path)]) == 0
    assert "deprecated: Query.agents: use `agentList`" in capsys.readouterr().out


def test_fragments_interpolated_into_templates_are_resolved(tmp_path, capsys):
    (tmp_path / "frags.ts").write_text(
        "const F = gql`fragment Basics on AgentDefinitionGQL { id name }`;\n"
        "const Q = gql`\n  query One($id: String!) { agent(id: $id) { ...Basics } }\n  ${F}\n`;\n"
        "const id = 'x';\n"
        "const BAD = `query Broken { agent(id: ${id}) { id } }`;\n"
    )

    assert check_ops_main([str(tmp_path)], as_json=True) == 1
    ops = json.loads(capsys.readouterr().out)["operations"]
    assert [(op["name"], op["status"], op["line"]) for op in ops] == [
        ("fragment Basics", "valid", 1),
        ("One", "valid", 3),
        ("Broken", "invalid", 7),
    ]
    assert ops[2]["errors"][0]["message"].startswith("Syntax Error")
    assert ops[2]["notes"] == ["substitutions dropped before checking: ${id}"]


def test_python_fstring_operation_is_checked(tmp_path, capsys):
    (tmp_path / "client.py").write_text(
        'fields = "id"\nQUERY = f"""\nquery Agent {{ agent(id: "a") {{ {fields} nope }} }}\n"""\n'
    )

    assert check_ops_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"{tmp_path / 'client.py'}:3: invalid Agent" in out
    assert "Cannot query field 'nope' on type 'AgentDefinitionGQL'" in out


def test_unparseable_python_file_exits_one(tmp_path, capsys):
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "ok.graphql").write_text("{ health }\n")

    assert check_ops_main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "broken.py: error cannot parse" in out
    assert "1 checked: 1 valid, 0 deprecated, 0 invalid; 1 file(s) not parsed" in out


def test_missing_path_or_schema_exits_two(tmp_path, capsys):
    assert check_ops_main([str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
    (tmp_path / "ok.graphql").write_text("{ health }\n")
    assert check_ops_main([str(tmp_path)], schema=str(tmp_path / "missing.graphql")) == 2
    assert "cannot load the schema" in capsys.readouterr().err


def test_schema_from_an_introspection_file(tmp_path, capsys):
    schema = build_schema(SCHEMA_FILE.read_text())
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"data": introspection_from_schema(schema)}))

    assert check_ops_main([str(DATA / "operations.graphql")], schema=str(path), as_json=True) == 1
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary == {"valid": 2, "deprecated": 3, "invalid": 3, "total": 8}


def test_schema_from_a_running_gateway(tmp_path, monkeypatch, capsys):
    schema = build_schema(SCHEMA_FILE.read_text())
    seen: dict = {}

    def post(url: str, **kwargs) -> httpx.Response:
        seen["url"], seen["headers"] = url, kwargs["headers"]
        assert "__schema" in kwargs["json"]["query"]
        body = {"data": introspection_from_schema(schema)}
        return httpx.Response(200, json=body, request=httpx.Request("POST", url))

    monkeypatch.setattr(graphql_ops.httpx, "post", post)
    monkeypatch.setenv("CB_API_KEY", "cbk_test")
    (tmp_path / "q.graphql").write_text("query H { health }\n")

    assert check_ops_main([str(tmp_path)], schema="http://gw.local:8000") == 0
    assert seen["url"] == "http://gw.local:8000/graphql"
    assert seen["headers"]["Authorization"] == "Bearer cbk_test"
    assert "1 valid" in capsys.readouterr().out
