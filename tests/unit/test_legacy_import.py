"""The legacy record mapping (`domain.legacy_import`) and `cb migrate config`, in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cli
from domain import legacy_import as legacy
from migration.provider_config import config_from_providers

DATA = json.loads((Path(__file__).resolve().parents[1] / "fixtures" / "legacy_system.json")
                  .read_text())  # fmt: skip
TRIAGE = DATA["agents"][0]


def test_an_agent_maps_field_by_field() -> None:
    mapped = legacy.agent_definition(TRIAGE, {}, {"gpt-4o-mini"})
    assert mapped.problem is None
    assert mapped.record == {
        "name": "Support triage",
        "description": "Sorts incoming tickets",
        "model": "gpt-4o-mini",
        "provider_type": "openai",
        "base_url": None,
        "system_prompt": "You triage support tickets.",
        "user_template": "Ticket: {message}",
        "context_instructions": "Answer with one label.",
        "parameters": {"temperature": 0.2, "max_tokens": 400, "top_p": 0.9, "stop": ["###"]},
        "tools": [],
        "capabilities": ["chat", "classification"],
        "tags": ["imported"],
        "legacy_id": TRIAGE["id"],
    }


def test_an_unknown_model_is_a_problem_until_mapped() -> None:
    poet = DATA["agents"][2]
    unmapped = legacy.agent_definition(poet, {}, {"gpt-4o-mini"})
    assert unmapped.problem is not None and "--model-map claude-2.1=" in unmapped.problem
    mapped = legacy.agent_definition(poet, {"claude-2.1": "cb:creative"}, set())
    assert mapped.problem is None and mapped.record["model"] == "cb:creative"


@pytest.mark.parametrize(
    ("status", "expected"),
    [("COMPLETED", ("completed", None)), ("TIMEOUT", ("failed", "timeout")),
     ("RUNNING", ("cancelled", "imported_unfinished"))],
)  # fmt: skip
def test_legacy_statuses_map_to_history_statuses(status: str, expected: tuple) -> None:
    assert legacy.STATUSES[status] == expected


def test_an_execution_keeps_its_times_and_names_its_imported_agent() -> None:
    record = DATA["executions"][0]
    mapped = legacy.execution_record(record, {record["agentId"]: "new-agent"})
    assert mapped.record["agent_id"] == "new-agent"
    assert mapped.record["legacy_agent_id"] == record["agentId"]
    assert mapped.record["started_at"] == 1748779200.0
    assert mapped.record["completed_at"] == pytest.approx(1748779201.25)
    unknown = legacy.execution_record({**record, "status": "DONE"}, {})
    assert unknown.problem == "unknown status 'DONE'"
    bad_time = legacy.execution_record({**record, "startedAt": "yesterday"}, {})
    assert bad_time.problem == "not a timestamp: 'yesterday'"


def test_a_config_needs_its_agent_imported() -> None:
    config = DATA["stateAgentConfigs"][0]
    assert legacy.state_config(config, {}).problem is not None
    mapped = legacy.state_config(config, {config["agentId"]: "new-agent"})
    assert mapped.record["agent_id"] == "new-agent"
    assert mapped.record["retry_config"] == {"max_attempts": 2, "backoff_seconds": 1,
                                             "retry_on_errors": ["timeout"]}  # fmt: skip


def test_ids_are_stable_per_tenant_and_kind() -> None:
    one = legacy.imported_id("t1", "agent", "a")
    assert one == legacy.imported_id("t1", "agent", "a")
    assert one != legacy.imported_id("t2", "agent", "a")
    assert one != legacy.imported_id("t1", "execution", "a")


def test_differences_name_each_field_that_differs() -> None:
    expected = legacy.agent_definition(TRIAGE, {}, {"gpt-4o-mini"}).record
    same = {**expected, "id": "x", "tags": ["imported", "later"]}  # fields not compared
    assert legacy.differences("agent", expected, same) == []
    changed = {**expected, "description": "Other", "parameters": {"temperature": 0.3}}
    found = legacy.differences("agent", expected, changed)
    assert [d.split(":")[0] for d in found] == ["description", "parameters"]


def test_a_record_without_an_id_is_reported_not_raised() -> None:
    mapped = legacy.mapped("agent", {"name": "x"}, {}, set(), {})
    assert mapped.problem is not None and "no id" in mapped.problem


def test_providers_become_a_configuration_that_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, notes = config_from_providers(DATA["llmProviders"])
    assert config["providers"]["openai-main"] == {
        "type": "openai", "base_url": "https://api.openai.com/v1",
        "api_key_env": "OPENAI_MAIN_API_KEY",
    }  # fmt: skip
    model = config["models"]["gpt-4o-mini"]
    assert model["input_price_per_mtok"] == 0.15 and model["output_price_per_mtok"] == 0.6
    assert model["capabilities"] == ["chat", "streaming", "tools"]
    assert any("OPENAI_MAIN_API_KEY" in note for note in notes)

    out = tmp_path / "legacy.yaml"
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_system.json"
    assert cli.main(["migrate", "config", "--from-file", str(fixture), "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["validate-config", str(out)]) == 0
    assert "OK (2 providers, 2 models" in capsys.readouterr().out


def test_an_unknown_provider_type_is_left_out_with_a_note() -> None:
    config, notes = config_from_providers([{"name": "X", "providerType": "cohere", "models": []}])
    assert config["providers"] == {} and "no codec here" in notes[0]


def test_a_legacy_url_is_recorded_without_its_credentials() -> None:
    from migration.data_migration import _without_credentials

    assert _without_credentials("https://u:secret@legacy.example:4000/graphql?x=1") == (
        "https://legacy.example:4000/graphql?x=1"
    )


def test_the_client_tools_answer_through_cb_migrate(capsys: pytest.CaptureFixture[str]) -> None:
    clients = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_clients"
    assert cli.main(["migrate", "check-ops", str(clients / "operations.graphql")]) == 1
    assert "invalid Budget" in capsys.readouterr().out
    assert cli.main(["migrate", "code", str(clients / "agent_app.ts")]) == 0
    out = capsys.readouterr().out
    assert "+import { Client" in out and '"@circuit-breaker/sdk"' in out
