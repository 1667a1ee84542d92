"""An execution's Started and ModelResolved events, read in one batch, are folded as one
row insert per read model; read apart (a batch ends between them) they give the same rows."""

from __future__ import annotations

import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from domain.execution import Execution
from domain.results import Outcome
from projections import db as db_module
from projections import runner
from projections.db import ReadModelDB
from projections.decoded import ResolvedStart, paired

TENANT = str(uuid.uuid4())
TABLES = {runner.READ_MODELS.name: "executions", runner.METRICS.name: "execution_facts"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield app
    app.close()


def _start(app: EventStore, model: str, end: bool = False) -> str:
    execution = Execution(
        id=uuid.uuid4(), tenant_id=TENANT, agent_id="agent-a", agent_version=1,
        request={"prompt": "x"}, model_requested="cb:fast", stream=False,
    )  # fmt: skip
    execution.resolve_model(model, "openai", {"strategy": "balanced"})
    if end:
        execution.complete(Outcome(model_resolved=model, provider="openai", duration_ms=5.0))
    app.save(execution)
    return str(execution.id)


def _fold(app: EventStore, path: Path, batch: int) -> tuple[dict[str, Any], list[str]]:
    """Both projections folded `batch` events at a time: their execution rows, and the
    statements the handlers sent."""
    sent: list[str] = []
    original = db_module.Batch.execute

    def counted(self: db_module.Batch, sql: str, params: Any = ()) -> Any:
        sent.append(" ".join(sql.split()))
        return original(self, sql, params)

    db_module.Batch.execute = counted  # type: ignore[method-assign]
    rows: dict[str, Any] = {}
    try:
        for projection in (runner.READ_MODELS, runner.METRICS):
            db = ReadModelDB("sqlite:///" + str(path), schema=projection.schema)
            runner.create_tables(db, projection)
            while runner.catch_up(app, db, batch, projection) == batch:
                pass
            table = TABLES[projection.name]
            rows[table] = sorted(
                (
                    r["execution_id"], r["status"], r["model_requested"], r["model_resolved"],
                    r["provider"],
                )
                for r in db.query(f"SELECT * FROM {table}")
            )  # fmt: skip
            db.close()
    finally:
        db_module.Batch.execute = original  # type: ignore[method-assign]
    return rows, sent


def test_a_start_and_its_resolution_are_one_insert_and_fold_as_when_apart(
    store: EventStore, tmp_path: Path
) -> None:
    running = [_start(store, "gpt-4o-mini") for _ in range(3)]
    ended = _start(store, "gpt-4.1", end=True)
    together, sent = _fold(store, tmp_path / "together.sqlite", batch=500)
    assert not [s for s in sent if "SET model_resolved = ?, provider = ? WHERE" in s]
    inserts = [s for s in sent if s.startswith("INSERT INTO execution")]
    assert len(inserts) == 2 * 4  # one per execution in each read model
    apart, sent_apart = _fold(store, tmp_path / "apart.sqlite", batch=1)
    assert len(sent_apart) > len(sent)  # one event at a time: an insert, then an update
    assert together == apart
    for table in TABLES.values():
        by_id = {row[0]: row for row in together[table]}
        assert [by_id[i][1:] for i in running] == [
            ("running", "cb:fast", "gpt-4o-mini", "openai")] * 3  # fmt: skip
        assert by_id[ended][1:] == ("completed", "cb:fast", "gpt-4.1", "openai")


def test_only_a_start_followed_by_its_own_resolution_is_paired() -> None:
    def event(kind: type, originator: str) -> Any:
        made = object.__new__(kind)
        object.__setattr__(made, "__dict__", {"originator_id": originator})
        return made

    a_start, a_resolved = event(Execution.Started, "a"), event(Execution.ModelResolved, "a")
    b_start, b_resolved = event(Execution.Started, "b"), event(Execution.ModelResolved, "b")
    restart = event(Execution.AttemptRestarted, "c")
    c_resolved = event(Execution.ModelResolved, "c")
    out = paired([a_start, b_start, a_resolved, restart, c_resolved, b_start, b_resolved])
    assert out[:5] == [a_start, b_start, a_resolved, restart, c_resolved]
    assert out[5] == ResolvedStart(b_start, b_resolved) and len(out) == 6
    assert paired([a_start]) == [a_start] and paired([]) == []


def test_a_read_model_folding_starts_must_fold_the_pair_too() -> None:
    module = types.SimpleNamespace(__name__="half", HANDLERS={Execution.Started: print})
    with pytest.raises(TypeError, match="ResolvedStart"):
        runner._handlers(module)
