"""A client's object that looks like a stored typed value (`{"_type_": …, "_data_": …}`) is
stored and read back as the object it was, and the projections fold past it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import JSONTranscoder

from actors.event_store import EventStore
from actors.settings import Settings
from projections import history
from projections import runner as projections
from projections.db import ReadModelDB
from tests.unit.test_fast_stored_events import _execution

LOOKALIKES: list[Any] = [
    {"_type_": "no_such_type", "_data_": 1},  # made its event unreadable
    {"_type_": "uuid_hex", "_data_": "0" * 32},  # was read back as a UUID
    [{"_type_": "datetime_iso", "_data_": {"_type_": "decimal_str", "_data_": "1.5"}}],
    {"_type_": ["not", "a", "name"], "_data_": None},
]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=str(tmp_path))


@pytest.fixture
def app(settings: Settings) -> Any:
    store = EventStore(env=settings.store_env())
    yield store
    store.close()


@pytest.mark.parametrize("lookalike", LOOKALIKES)
def test_a_lookalike_anywhere_in_an_event_reads_back_as_it_was_sent(
    app: EventStore, lookalike: Any
) -> None:
    execution = _execution({"prompt": "hi", "metadata": {"tag": lookalike}})
    execution.call_tool("call_1", "lookup", {"query": lookalike}, 1)
    execution.record_tool_result("call_1", "lookup", {"rows": [lookalike]}, None, 1.5)
    app.save(execution)

    read = app.repository.get(execution.id)
    assert read.request["metadata"]["tag"] == lookalike
    assert read.tool_log[0]["arguments"] == {"query": lookalike}
    assert read.result == execution.result
    # as the projections read them: each stored event, from the notification log
    events = [app.mapper.to_domain_event(n) for n in app.recorder.select_notifications(0, 50)]
    assert events[0].request["metadata"]["tag"] == lookalike


def test_an_ordinary_state_is_stored_as_the_librarys_transcoder_writes_it(
    app: EventStore,
) -> None:
    library = JSONTranscoder()
    app.register_transcodings(library)
    state = {"when": _execution({"prompt": "hi"}).created_on, "id": uuid.uuid4(), "n": [1, "a"]}
    assert app.mapper.transcoder.encode(state) == library.encode(state)


def test_a_lookalike_stored_before_reads_as_the_object_it_is(app: EventStore) -> None:
    library = JSONTranscoder()  # how such a state was written before
    app.register_transcodings(library)
    written = library.encode({"tag": {"_type_": "no_such_type", "_data_": 1}})
    assert app.mapper.transcoder.decode(written) == {
        "tag": {"_type_": "no_such_type", "_data_": 1}
    }


def test_the_projections_fold_an_execution_with_a_lookalike_and_go_on(
    app: EventStore, settings: Settings
) -> None:
    poisoned = _execution({"prompt": "hi", "metadata": {"tag": LOOKALIKES[0]}})
    after = _execution({"prompt": "next"})
    app.save(poisoned)
    app.save(after)
    db = ReadModelDB(settings.read_model_url())
    projections.create_tables(db)
    assert projections.catch_up_fully(app, db, projections.READ_MODELS) == 8
    for execution in (poisoned, after):
        row = history.get_execution(db, "t-1", str(execution.id))
        assert row is not None and row["status"] == "completed"
    db.close()
