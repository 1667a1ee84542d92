"""`cb migrate code`: legacy client code rewritten into the new SDKs (tests/fixtures/legacy_clients
holds the legacy sources, the expected rewritten files and the expected diff report)."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
from graphql import build_schema, parse, validate

from migration.code_rewrite import code_main
from migration.graphql_ops import SCHEMA_FILE
from migration.source_scan import parse_ts

DATA = Path(__file__).resolve().parent.parent / "fixtures" / "legacy_clients"
SOURCES = ["agent_app.ts", "chat.js", "legacy_client.py", "operations.graphql"]


@pytest.fixture
def copy(tmp_path, monkeypatch) -> Path:
    for name in SOURCES:
        shutil.copy(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_diff_and_by_hand_list_match_the_expected_ones(copy, capsys):
    assert code_main(["."]) == 0
    assert capsys.readouterr().out == (DATA / "code_diff.expected").read_text()
    for name in SOURCES:  # a diff only: nothing written
        assert (copy / name).read_text() == (DATA / name).read_text()


def test_write_rewrites_the_files_as_expected(copy, capsys):
    assert code_main(["."], write=True) == 0
    out = capsys.readouterr().out
    for name in SOURCES:
        assert f"wrote {name}\n" in out
        assert (copy / name).read_text() == (DATA / f"{name}.expected").read_text()
    assert "4 file(s) checked, 4 rewritten, 19 item(s) by hand" in out

    # a second run finds nothing more to rewrite
    assert code_main(["."], write=True) == 0
    assert "0 rewritten" in capsys.readouterr().out


def test_rewritten_files_parse_and_use_the_new_sdk(copy):
    code_main(["."], write=True)
    ts = (copy / "agent_app.ts").read_bytes()
    assert not parse_ts(Path("agent_app.ts"), ts).root_node.has_error
    assert not parse_ts(Path("chat.js"), (copy / "chat.js").read_bytes()).root_node.has_error
    text = ts.decode()
    assert '"circuit-breaker-sdk"' not in text and 'from "@circuit-breaker/sdk"' in text
    assert "new Client({ baseUrl, timeoutMs: 30000, apiKey })" in text
    assert "client.agents().create" not in text and "client.agents.create(" in text
    assert "COMMON_MODELS" not in text and "createAgent" not in text
    assert "client.graphql.budgetStatus({ userId })" in text
    assert ".setRoutingStrategy(" not in text
    module = ast.parse((copy / "legacy_client.py").read_text())
    imports = [n for n in module.body if isinstance(n, ast.ImportFrom)]
    assert [(n.module, n.names[0].name) for n in imports] == [("circuit_breaker", "Client")]
    schema = build_schema(SCHEMA_FILE.read_text())
    graphql_file = parse((copy / "operations.graphql").read_text())
    # only the three invalid operations are left: the alias `$id: ID!` was respelled
    errors = [e.message for e in validate(schema, graphql_file)]
    assert len(errors) == 3 and not any("ID!" in e for e in errors)


def test_by_hand_items_name_the_line_the_pattern_and_what_to_do(copy, capsys):
    code_main(["agent_app.ts"])
    out = capsys.readouterr().out
    assert (
        "agent_app.ts:45: llm.streamChatCompletion(…)\n    callback streaming: use `for await"
    ) in out
    assert "agent_app.ts:57: client.subscriptions(…)\n" in out
    assert (
        "agent_app.ts:58: client.mcp(…)\n    MCP: the legacy MCP GraphQL operations were BROKEN"
        in out
    )
    assert "agent_app.ts:33: client.agents().chat(…)\n" in out


RAW_TRIGGER = """import httpx

Q = "mutation T($i: TriggerStateAgentsInput!) { triggerStateAgents(input: $i) { id } }"


def trigger(url: str, key: str, resource: str) -> list:
    r = httpx.post(
        url + "/graphql",
        json={"query": Q, "variables": {"i": {"resourceId": resource}}},
        headers={"Authorization": "Bearer " + key},
    )
    r.raise_for_status()
    return r.json()["data"]["triggerStateAgents"]
"""

SDK_TRIGGER = """from circuit_breaker import Client

Q = "mutation T($i: TriggerStateAgentsInput!) { triggerStateAgents(input: $i) { id } }"


def trigger(url: str, key: str, resource: str) -> list:
    r = Client(base_url=url, api_key=key).graphql.query(Q, {"i": {"resourceId": resource}})
    return r["triggerStateAgents"]
"""


def test_python_response_fully_carried_over_drops_the_http_import(tmp_path, capsys):
    path = tmp_path / "client.py"
    path.write_text(RAW_TRIGGER)

    assert code_main([str(path)], write=True) == 0
    assert path.read_text() == SDK_TRIGGER
    assert "0 item(s) by hand" in capsys.readouterr().out  # no REST equivalent to suggest


def test_files_without_the_legacy_sdk_are_left_alone(tmp_path, capsys):
    path = tmp_path / "other.ts"
    source = (
        'import { Client } from "pg";\n'
        "const c = new Client({ timeout: 5 });\n"
        'c.query("SELECT 1");\n'
    )
    path.write_text(source)

    assert code_main([str(tmp_path)], write=True) == 0
    assert path.read_text() == source
    assert "1 file(s) checked, 0 rewritten, 0 item(s) by hand" in capsys.readouterr().out


def test_builder_without_base_url_is_rewritten_and_flagged(tmp_path, capsys):
    path = tmp_path / "b.ts"
    path.write_text(
        'import { Client } from "circuit-breaker-sdk";\n'
        "export const c = Client.builder().apiKey(k).headers({ a: '1' }).build();\n"
    )

    assert code_main([str(path)]) == 0
    out = capsys.readouterr().out
    assert "+export const c = new Client({ apiKey: k, headers: { a: '1' } });" in out
    assert "b.ts:2: Client.builder() without baseUrl" in out


def test_unparseable_file_exits_one_and_the_others_are_still_rewritten(copy, capsys):
    (copy / "broken.py").write_text("def f(:\n")
    (copy / "broken.ts").write_text("const x = ;;; {\n")

    assert code_main(["."], write=True) == 1
    out = capsys.readouterr().out
    assert "broken.py: error: cannot parse" in out
    assert "broken.ts: error: cannot parse: syntax error" in out
    assert (copy / "chat.js").read_text() == (DATA / "chat.js.expected").read_text()


def test_missing_path_exits_two(tmp_path, capsys):
    assert code_main([str(tmp_path / "nope.ts")]) == 2
    assert "no such file or directory" in capsys.readouterr().err
