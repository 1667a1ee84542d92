"""Crypto-shredding on real SQLite files: an execution's payload sealed under its payload
key in the event store and the history read model; destroying the key erases every copy
while counts, tokens and cost stay; projections rebuild over shredded events."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.payload_keys import PayloadKeys
from actors.settings import Settings
from domain import shredding
from domain.execution import Execution
from domain.results import Outcome
from domain.retention import payload_keys_before
from projections import decoded, history, runner
from projections.db import ReadModelDB

TOOL_ARGS = {"query": "{canary} args"}


def _states(canary: str) -> dict[str, dict[str, Any]]:
    return {
        "Execution.Started": {"request": {"prompt": f"{canary} prompt", "metadata": {"a": 1}}},
        "Execution.ToolCalled": {"arguments": {"q": canary}, "name": "search"},
        "Execution.ToolResultRecorded": {"result": {"hit": canary},
                                         "error": {"type": "x", "message": canary}},
        "Execution.Progressed": {"stream_events": [[1, "content_delta", {"delta": canary}]]},
        "Execution.Completed": {
            "outcome": {"answer": {"content": canary, "finish_reason": "stop"},
                        "usage": {"total_tokens": 7}, "cost_usd": 0.5,
                        "attempts": [{"model": "m", "error": canary}, {"model": "m"}]},
            "stream_tail": [[2, "content_delta", {"delta": canary}]],
        },
    }  # fmt: skip


@pytest.mark.parametrize("kind", list(_states("x")))
def test_split_leaves_no_payload_and_merge_restores_it(kind: str) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    original = _states(canary)[kind]
    state = copy.deepcopy(original)
    payload = shredding.split(kind, state)
    assert payload is not None and canary in repr(payload)
    assert canary not in repr(state)  # what stays in clear holds none of it
    erased = copy.deepcopy(state)
    shredding.merge(kind, state, payload)
    assert state == original
    shredding.erase(kind, erased)
    assert canary not in repr(erased)


def test_clear_facts_stay_in_a_split_outcome() -> None:
    state = copy.deepcopy(_states("c")["Execution.Completed"])
    shredding.split("Execution.Completed", state)
    assert state["outcome"]["usage"] == {"total_tokens": 7}
    assert state["outcome"]["cost_usd"] == 0.5
    assert state["outcome"]["answer"]["finish_reason"] == "stop"
    assert state["outcome"]["attempts"][1] == {"model": "m"}


def test_retention_keeps_each_hour_for_at_least_its_days() -> None:
    now = 1_000_000 * 3600 + 1800.0  # half past an hour
    before = payload_keys_before(now, 1)
    # the hour that ended exactly a day before `now`'s hour started has expired...
    assert shredding.bucket(now - 86400) - 3600 < before
    # ...the hour holding `now - 1 day` has not (it ends half an hour after the day)
    assert shredding.bucket(now - 86400) >= before


class _Stack:
    """An event store, its payload keys and the history read model in one data dir."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = EventStore(env=settings.store_env())
        self.keys = PayloadKeys(settings)
        self.app.use_payload_keys(self.keys)
        self.db = ReadModelDB(settings.read_model_url())
        history.seal_payloads_with(self.keys)
        runner.create_tables(self.db)

    def run(self, tenant_id: str, subject: str | None, canary: str, bucket: int) -> str:
        ref = shredding.subject_ref(tenant_id, subject) if subject else "-"
        kid = self.keys.kid_for(tenant_id, ref, bucket)
        execution = Execution(
            id=uuid.uuid4(), tenant_id=tenant_id, agent_id=str(uuid.uuid4()), agent_version=1,
            request={"prompt": f"tell me {canary}", "metadata": {"resource_id": "r-1"}},
            model_requested="gpt-4o-mini", stream=True, subject_ref=ref, payload_kid=kid,
        )  # fmt: skip
        execution.call_tool("c1", "search", {"q": canary}, 1)
        execution.record_tool_result("c1", "search", {"hit": canary}, None, 3.0)
        execution.checkpoint([[1, "content_delta", {"delta": canary}]], {"total_tokens": 2})
        execution.complete(
            Outcome.model_validate({"answer": {"content": f"here: {canary}"},
                                    "usage": {"prompt_tokens": 4, "completion_tokens": 3,
                                              "total_tokens": 7},
                                    "cost_usd": 0.25, "model_resolved": "gpt-4o-mini",
                                    "request_metadata": {"resource_id": "r-1"}}),
            [[2, "content_delta", {"delta": canary}]],
        )  # fmt: skip
        self.app.save(execution)
        runner.catch_up_fully(self.app, self.db, runner.READ_MODELS)
        return str(execution.id)

    def view(self, tenant_id: str, execution_id: str) -> dict[str, Any]:
        [found] = history.list_executions(
            self.db, tenant_id, execution_id=execution_id, with_input=True
        )
        return found

    def close(self) -> None:
        history.seal_payloads_with(None)
        decoded.forget()
        self.db.close()
        self.app.close()
        self.keys.close()


@pytest.fixture
def stack(tmp_path: Path) -> Any:
    made = _Stack(Settings(data_dir=str(tmp_path)))
    yield made
    made.close()


def _in_files(data_dir: Path, canary: str) -> bool:
    return any(canary.encode() in f.read_bytes() for f in data_dir.glob("*.sqlite*"))


def test_a_subjects_payload_is_never_in_the_files_and_reads_back_whole(
    stack: _Stack, tmp_path: Path
) -> None:
    tenant, canary = str(uuid.uuid4()), f"CANARY-{uuid.uuid4().hex}"
    execution_id = stack.run(tenant, "ada@example.com", canary, shredding.bucket(0))
    stored = stack.app.repository.get(uuid.UUID(execution_id))
    assert stored.result["response"]["content"] == f"here: {canary}"
    assert stored.stream_events[0][2] == {"delta": canary}
    view = stack.view(tenant, execution_id)
    assert view["input"]["prompt"] == f"tell me {canary}"
    assert view["response"]["content"] == f"here: {canary}"
    assert "payload" not in view
    assert not _in_files(tmp_path, canary)
    assert not _in_files(tmp_path, "ada@example.com")  # only its one-way reference is kept


def test_destroying_the_key_erases_every_copy_and_keeps_the_numbers(
    stack: _Stack, tmp_path: Path
) -> None:
    tenant = str(uuid.uuid4())
    gone, kept = f"CANARY-{uuid.uuid4().hex}", f"KEPT-{uuid.uuid4().hex}"
    erased_id = stack.run(tenant, "ada", gone, shredding.bucket(0))
    kept_id = stack.run(tenant, "bob", kept, shredding.bucket(0))
    before = stack.view(tenant, erased_id)

    ref = shredding.subject_ref(tenant, "ada")
    assert stack.keys.destroy(tenant, ref) == 1
    decoded.forget()

    view = stack.view(tenant, erased_id)
    assert view["payload"] == "erased"
    assert view["input"] == shredding.ERASED_INPUT
    assert view["response"]["content"] == shredding.ERASED
    assert view["usage"] == before["usage"] and view["usage"]["cost_usd"] == 0.25
    assert view["metadata"]["request_metadata"] == {"resource_id": "r-1"}
    stored = stack.app.repository.get(uuid.UUID(erased_id))  # no error: marks in its place
    assert stored.result["response"]["content"] == shredding.ERASED
    assert stored.outcome.usage.total_tokens == 7
    assert stack.view(tenant, kept_id)["response"]["content"] == f"here: {kept}"

    runner.rebuild(stack.app, stack.db, runner.READ_MODELS)  # over shredded events
    assert stack.view(tenant, erased_id)["response"]["content"] == shredding.ERASED
    assert stack.view(tenant, erased_id)["usage"] == before["usage"]
    assert stack.view(tenant, kept_id)["input"]["prompt"] == f"tell me {kept}"
    assert not _in_files(tmp_path, gone)


def test_a_later_execution_of_an_erased_subject_gets_a_new_key(stack: _Stack) -> None:
    tenant = str(uuid.uuid4())
    first = stack.run(tenant, "ada", "one", shredding.bucket(0))
    stack.keys.destroy(tenant, shredding.subject_ref(tenant, "ada"))
    second = stack.run(tenant, "ada", "two", shredding.bucket(0))
    assert stack.view(tenant, first)["payload"] == "erased"
    assert stack.view(tenant, second)["response"]["content"] == "here: two"


def test_destroying_by_hour_takes_exactly_the_hours_before(stack: _Stack) -> None:
    tenant = str(uuid.uuid4())
    hours = [shredding.bucket(h * 3600.0) for h in range(5)]
    ids = [stack.run(tenant, None, f"hour-{i}", hour) for i, hour in enumerate(hours)]
    assert stack.keys.destroy(tenant, before=hours[3]) == 3
    decoded.forget()
    shown = [stack.view(tenant, i)["response"]["content"] for i in ids]
    assert shown == [shredding.ERASED] * 3 + ["here: hour-3", "here: hour-4"]


def test_events_of_an_execution_without_a_key_stay_as_they_were(stack: _Stack) -> None:
    tenant = str(uuid.uuid4())
    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant, agent_id="a", agent_version=1,
        request={"prompt": "plain"}, model_requested="m", stream=False,
    )  # fmt: skip
    stack.app.save(execution)
    assert stack.app.repository.get(execution.id).payload_kid is None
    [stored] = stack.app.recorder.select_events(execution.id)
    assert b"plain" in stored.state  # no compressor or cipher configured here
