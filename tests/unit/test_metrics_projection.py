"""The metrics projection folds a known mix of executions into figures equal to the ones
computed by hand; a rebuild gives the same rows; a restart never counts an event twice."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from domain import histogram
from domain.execution import Execution
from domain.results import Outcome
from projections import analytics, runner
from projections import db as db_module
from projections.db import ReadModelDB
from projections.metrics import KEYS, instant, unix

TENANT, OTHER = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    app = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield app
    app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ReadModelDB]:
    """The read models on SQLite, and on PostgreSQL (whose folds are pipelined)."""
    if request.param == "postgres":
        url = request.getfixturevalue("database")
    else:
        url = "sqlite:///" + str(tmp_path / "readmodels.sqlite")
    handle = ReadModelDB(url, schema="analytics")
    runner.create_tables(handle, runner.METRICS)
    yield handle
    handle.close()


def _run(
    app: EventStore,
    status: str,
    *,
    tenant: str = TENANT,
    agent: str = "agent-a",
    model: str = "m1",
    provider: str = "p1",
    stream: bool = False,
    tools: list[str | None] = (),  # each tool call's error type, or None
    **outcome: Any,
) -> str:
    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant, agent_id=agent, agent_version=1,
        request={"prompt": "x"}, model_requested="cb:fast", stream=stream,
    )  # fmt: skip
    execution.resolve_model(model, provider, {})
    for n, error in enumerate(tools):
        execution.call_tool(f"c{n}", "calc", {}, 1)
        execution.record_tool_result(f"c{n}", "calc", 1, error and {"type": error}, 1.0)
    facts = Outcome.model_validate({"model_resolved": model, "provider": provider, **outcome})
    getattr(execution, {"completed": "complete", "failed": "fail", "cancelled": "cancel"}[status])(
        facts
    )
    app.save(execution)
    return str(execution.id)


def _attempts(*steps: tuple[str, str | None]) -> list[dict[str, Any]]:
    return [{"model": m, "latency_ms": 10.0, "error": e} for m, e in steps]


def _mix(app: EventStore) -> dict[str, str]:
    return {
        "plain": _run(app, "completed", duration_ms=100.0, cost_usd=0.001,
                      usage={"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
                      attempts=_attempts(("m1", None))),
        "retried": _run(app, "completed", stream=True, duration_ms=300.0, ttft_ms=40.0,
                        cost_usd=0.002,
                        usage={"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
                        attempts=_attempts(("m1", "rate_limited"), ("m1", None))),
        "tools": _run(app, "completed", duration_ms=900.0, cost_usd=0.004,
                      tools=[None, "tool_error"],
                      usage={"prompt_tokens": 40, "completion_tokens": 10, "total_tokens": 50},
                      attempts=_attempts(("m1", None), ("m1", None))),
        "failed": _run(app, "failed", agent="agent-b", model="m2", provider="p2", duration_ms=50.0,
                       error={"type": "provider_error", "message": "boom"},
                       attempts=_attempts(("m2", "provider_error"), ("m3", "provider_error"))),
        "cancelled": _run(app, "cancelled", stream=True, duration_ms=70.0, ttft_ms=20.0,
                          attempts=_attempts(("m1", None))),
        "elsewhere": _run(app, "completed", tenant=OTHER, duration_ms=5.0, cost_usd=9.0),
    }  # fmt: skip


def _usage(db: ReadModelDB, group_by: list[str], tenant: str = TENANT) -> list[dict[str, Any]]:
    now = time.time()
    return analytics.usage(db, tenant, now - 3600, now + 60, group_by, {})


def _within(estimate: float | None, exact: float) -> bool:
    return estimate is not None and abs(estimate - exact) / exact <= histogram.RELATIVE_ERROR


def test_usage_by_agent_equals_the_figures_by_hand(store: EventStore, db: ReadModelDB) -> None:
    _mix(store)
    runner.catch_up_fully(store, db, runner.METRICS)
    rows = {row["agent_id"]: row for row in _usage(db, ["agent"])}
    assert set(rows) == {"agent-a", "agent-b"}  # the other tenant's execution is not here
    a = rows["agent-a"]
    assert (a["executions"], a["succeeded"], a["failed"], a["cancelled"]) == (4, 3, 0, 1)
    assert a["streamed"] == 2 and a["success_rate"] == 0.75
    assert (a["prompt_tokens"], a["completion_tokens"]) == (62, 38)
    assert a["cost_usd"] == pytest.approx(0.007)
    assert a["cost_per_success_usd"] == pytest.approx(0.007 / 3)
    assert a["tokens_per_success"] == pytest.approx(100 / 3, abs=1e-3)
    assert (a["retries"], a["fallbacks"], a["tool_calls"], a["tool_failures"]) == (1, 0, 2, 1)
    durations = [70.0, 100.0, 300.0, 900.0]  # sorted; rank ⌊q·(n−1)⌋
    assert a["duration_ms"]["mean"] == pytest.approx(sum(durations) / 4)
    assert _within(a["duration_ms"]["p50"], durations[1])
    assert _within(a["duration_ms"]["p90"], durations[2])
    assert _within(a["duration_ms"]["p99"], durations[2])
    assert a["ttft_ms"]["mean"] == 30.0 and _within(a["ttft_ms"]["p50"], 20.0)
    assert a["error_types"] == {}
    b = rows["agent-b"]
    assert (b["executions"], b["failed"], b["success_rate"]) == (1, 1, 0.0)
    assert b["error_types"] == {"provider_error": 1} and b["fallbacks"] == 1
    assert b["cost_per_success_usd"] is None and b["ttft_ms"]["p50"] is None


def test_groupings_and_error_patterns(store: EventStore, db: ReadModelDB) -> None:
    ids = _mix(store)
    runner.catch_up_fully(store, db, runner.METRICS)
    by_status = {r["status"]: r["executions"] for r in _usage(db, ["status"])}
    assert by_status == {"cancelled": 1, "completed": 3, "failed": 1}
    [day] = _usage(db, ["day"])
    assert day["executions"] == 5 and day["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    now = time.time()
    models = analytics.models(db, TENANT, now - 3600, now + 60)
    assert [(m["model"], m["provider"], m["executions"]) for m in models] == [
        ("m1", "p1", 4), ("m2", "p2", 1)]  # fmt: skip
    [pattern] = analytics.errors(db, TENANT, now - 3600, now + 60)
    assert pattern["error_type"] == "provider_error" and pattern["count"] == 1
    assert (pattern["provider"], pattern["model"]) == ("p2", "m2")
    assert pattern["execution_ids"] == [ids["failed"]]


def test_rebuild_equals_live_and_a_restart_counts_nothing_twice(
    store: EventStore, db: ReadModelDB, tmp_path: Path
) -> None:
    _mix(store)
    runner.catch_up_fully(store, db, runner.METRICS)
    tables = ("execution_facts", "usage_hourly", "usage_daily")

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {t: sorted(db.query(f"SELECT * FROM {t}"), key=repr) for t in tables}

    live = rows()
    assert runner.rebuild(store, db, runner.METRICS) == len(
        store.recorder.select_notifications(start=None, limit=10_000)
    )
    assert rows() == live
    # a restart: a new handle on the same tables resumes from the tracked position
    again = ReadModelDB(db.url, schema="analytics")
    try:
        runner.create_tables(again, runner.METRICS)
        assert runner.catch_up_fully(store, again, runner.METRICS) == 0
        _run(store, "completed", duration_ms=10.0)
        assert runner.catch_up_fully(store, again, runner.METRICS) > 0
    finally:
        again.close()
    [a] = [r for r in _usage(db, ["agent"]) if r["agent_id"] == "agent-a"]
    assert a["executions"] == 5
    lag = runner.lag(store, db, runner.METRICS)
    assert lag["lag_events"] == 0 and lag["lag_seconds"] == 0.0
    _run(store, "completed", duration_ms=10.0)
    behind = runner.lag(store, db, runner.METRICS)
    assert behind["lag_events"] > 0 and behind["lag_seconds"] >= 0.0


def test_folds_in_small_batches_make_one_row_per_key_as_one_fold_does(
    store: EventStore, db: ReadModelDB
) -> None:
    tenants = [str(uuid.uuid4()) for _ in range(4)]
    for n in range(12):  # several tenants and keys per batch, rows made and added to
        failed = {"error": {"type": "provider_error", "message": "x"}} if n % 3 == 0 else {}
        _run(store, "failed" if failed else "completed", tenant=tenants[n % 4],
             model=f"m{n % 2}", duration_ms=10.0 * (n + 1), cost_usd=0.001 * n,
             usage={"prompt_tokens": n, "completion_tokens": 1, "total_tokens": n + 1},
             **failed)  # fmt: skip
    while runner.catch_up(store, db, 5, runner.METRICS) == 5:
        pass
    keys = ", ".join(("tenant_id", "hour", *KEYS))

    def rollups() -> list[dict[str, Any]]:
        return sorted(db.query(f"SELECT * FROM usage_hourly ORDER BY {keys}"), key=repr)

    folded = rollups()
    assert len(folded) == len({tuple(r[k] for k in keys.split(", ")) for r in folded})
    assert sum(r["executions"] for r in folded) == 12
    runner.rebuild(store, db, runner.METRICS)
    assert rollups() == folded


def test_a_postgres_fold_of_many_executions_takes_a_handful_of_round_trips(
    store: EventStore, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes wait for the next read; facts of executions started in the batch are not read
    back; the roll-up rows are read once per table: BEGIN with the position, two roll-up
    reads, the rest with COMMIT, however many executions and tenants the batch holds."""
    db = ReadModelDB(database, schema="analytics")
    runner.create_tables(db, runner.METRICS)
    tenants = [str(uuid.uuid4()) for _ in range(6)]
    for n in range(30):
        _run(store, "completed", tenant=tenants[n % 6], agent=f"agent-{n // 6 % 2}",
             tools=[None, "tool_error"] if n % 5 == 0 else [], duration_ms=5.0 + n,
             usage={"prompt_tokens": n, "completion_tokens": 2, "total_tokens": n + 2})  # fmt: skip
    sends: list[int] = []
    send = db_module._Buffered._send
    monkeypatch.setattr(db_module._Buffered, "_send", lambda self: (sends.append(1), send(self)))
    assert runner.catch_up(store, db, 500, runner.METRICS) > 90
    assert len(sends) == 4
    rows = db.query("SELECT tenant_id, executions, tool_calls, tool_failures FROM usage_daily")
    assert len(rows) == 12 and sum(r["executions"] for r in rows) == 30  # 6 tenants x 2 agents
    assert (sum(r["tool_calls"] for r in rows), sum(r["tool_failures"] for r in rows)) == (12, 6)
    db.close()


def test_a_stored_instant_reads_back_as_the_same_unix_time() -> None:
    for ts in (0.0, 1_796_572_885.123456, 1e9 + 0.5):
        assert instant(ts).endswith("Z") and abs(unix(instant(ts)) - ts) < 1e-6
