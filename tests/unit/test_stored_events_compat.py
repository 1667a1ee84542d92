"""Events written by the previous version still load, project and replay the same.

`tests/fixtures/events-v1.sqlite` was written by the server at the commit before typed
results (5ba4de1), driven over HTTP against the emulator: a whole, a streamed and a tool
execution, a cancelled stream, a failure after attempts and a routing failure.
`executions-v1.json` is what that version's `GET /api/v1/executions` answered.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from domain import stream_log
from domain.execution import Execution
from domain.results import Outcome
from domain.tenant import Tenant
from projections import history, runner
from projections.db import ReadModelDB

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def v1_store(tmp_path: Path) -> Any:
    shutil.copy(FIXTURES / "events-v1.sqlite", tmp_path / "events.sqlite")
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield app
    app.close()


@pytest.fixture
def v1_views() -> dict[str, Any]:
    return json.loads((FIXTURES / "executions-v1.json").read_text())


def test_every_v1_execution_loads_with_its_result_unchanged(v1_store, v1_views) -> None:
    statuses = set()
    for view in v1_views["executions"]:
        execution = v1_store.repository.get(uuid.UUID(view["execution_id"]))
        assert isinstance(execution, Execution)
        assert isinstance(execution.outcome, Outcome)
        result = execution.result
        statuses.add(result["status"])
        assert result["status"] == view["status"]
        assert result["response"] == view.get("response")
        assert result["metadata"] == view.get("metadata")
        if view["error"]:
            assert result["error"]["type"] == view["error"]["type"]
            assert result["error"]["message"] == view["error"]["message"]
    assert statuses == {"completed", "failed", "cancelled"}


def test_v1_events_project_to_the_same_history(v1_store, v1_views, tmp_path: Path) -> None:
    db = ReadModelDB("sqlite:///" + str(tmp_path / "readmodels.sqlite"))
    try:
        runner.create_tables(db)
        runner.catch_up(v1_store, db)
        listed = history.list_executions(db, v1_views["tenant_id"])
    finally:
        db.close()
    # the same views, plus what history keeps since: the kind every execution of then had,
    # and the tags and retry count none of them carried
    assert all(view.pop("kind") == "agent_execution" for view in listed)
    added = [(v.pop("resource_id"), v.pop("state_id"), v.pop("retry_count")) for v in listed]
    assert set(added) == {(None, None, 0)}
    assert listed == v1_views["executions"]


def test_a_v1_stream_replays_from_the_store(v1_store, v1_views) -> None:
    streamed = [
        v1_store.repository.get(uuid.UUID(v["execution_id"]))
        for v in v1_views["executions"]
        if v["stream"]
    ]
    done = next(e for e in streamed if e.status == "completed")
    events = stream_log.replay(
        str(done.id),
        done.stream_events,
        0,
        stream_log.terminal_event(done.status, done.result, str(done.id)),
        done.stream_complete,
    )
    kinds = [e["event"] for e in events]
    assert kinds[0] == "execution_start" and kinds[-1] == "execution_complete"
    assert (
        "".join(e["data"]["delta"] for e in events if e["event"] == "content_chunk")
        == (done.result["response"]["content"])
    )


def test_the_v1_tenant_and_its_agents_load(v1_store, v1_views) -> None:
    tenant = v1_store.repository.get(uuid.UUID(v1_views["tenant_id"]))
    assert isinstance(tenant, Tenant)
    assert len(tenant.agent_ids) == 2 and len(tenant.api_keys) == 1
    agents = [v1_store.repository.get(uuid.UUID(a)) for a in tenant.agent_ids]
    assert {a.definition["name"] for a in agents} == {"Helper", "Analyst"}


def test_new_terminal_events_record_facts_not_the_api_document(tmp_path: Path) -> None:
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    execution = Execution(
        id=uuid.uuid4(), tenant_id="t", agent_id="a", agent_version=1,
        request={"prompt": "hi"}, model_requested="cb:fast", stream=False,
    )  # fmt: skip
    execution.complete(Outcome.model_validate({"answer": {"content": "hello"}, "cost_usd": 0.5}))
    app.save(execution)
    try:
        notes = app.recorder.select_notifications(start=None, limit=10)
        completed = [n for n in notes if n.topic.endswith("Execution.Completed")]
        state = json.loads(bytes(completed[0].state))
        assert state["class_version"] == 3
        assert "result" not in state and state["outcome"]["answer"]["content"] == "hello"
        assert "metadata" not in state["outcome"] and "execution_id" not in state["outcome"]
        loaded = app.repository.get(execution.id)
        assert loaded.result["usage"]["cost_usd"] == 0.5
    finally:
        app.close()


def test_a_v2_terminal_event_loads_with_the_version_3_facts_unknown(tmp_path: Path) -> None:
    """Version 3 added the time to first content and each attempt's provider and TTFT; an
    event stored as version 2 (without them) loads, and projects, with them None."""
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    execution = Execution(
        id=uuid.uuid4(), tenant_id="t", agent_id="a", agent_version=1,
        request={"prompt": "hi"}, model_requested="cb:fast", stream=True,
    )  # fmt: skip
    attempt = {"model": "m", "provider": "p", "latency_ms": 5.0, "ttft_ms": 2.0}
    execution.complete(Outcome.model_validate({"ttft_ms": 3.0, "attempts": [attempt]}))
    app.save(execution)
    try:
        datastore: Any = app.recorder.datastore  # type: ignore[attr-defined]
        table = app.recorder.events_table_name  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(f"SELECT rowid, state FROM {table} WHERE topic LIKE '%Completed'")
            rowid, stored = cursor.fetchone()
            state = json.loads(bytes(stored))
            assert state["class_version"] == 3 and state["outcome"]["ttft_ms"] == 3.0
            state["class_version"] = 2  # as version 2 wrote it
            del state["outcome"]["ttft_ms"]
            for key in ("provider", "ttft_ms"):
                del state["outcome"]["attempts"][0][key]
            cursor.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?",
                           (json.dumps(state).encode(), rowid))  # fmt: skip
        loaded = app.repository.get(execution.id)
        assert loaded.outcome.ttft_ms is None
        assert loaded.outcome.attempts[0].provider is None
        assert loaded.outcome.attempts[0].latency_ms == 5.0
        assert loaded.result["metadata"]["attempt_log"][0]["model"] == "m"
    finally:
        app.close()
