"""PostgreSQL stopped and started again under the store's users (a server of the test's own):
the read models' connection comes back by itself, and an execution whose end the store did
not take is recorded failed once it is back (`actors.unrecorded_ends`), with its usage."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from eventsourcing.persistence import PersistenceError

from actors.event_store import AsyncEventStore
from actors.settings import Settings
from actors.unrecorded_ends import UnrecordedEnds
from domain.execution import Execution
from domain.results import Outcome
from projections.db import ReadModelDB
from tests.support.private_postgres import PrivatePostgres


def test_read_models_answer_again_after_a_restart(own_postgres: PrivatePostgres) -> None:
    db = ReadModelDB(own_postgres.url, schema="outage")
    db.run("CREATE TABLE IF NOT EXISTS seen (n INTEGER)")
    with db.transaction() as cur:
        cur.execute("INSERT INTO seen (n) VALUES (?)", (1,))
    own_postgres.stop()
    try:
        with pytest.raises(PersistenceError):  # answered 503 by actors.replies, not a 500
            db.query("SELECT n FROM seen")
    finally:
        own_postgres.start()
    assert db.query("SELECT n FROM seen") == [{"n": 1}]  # the same handle, a new connection
    db.close()


async def test_an_end_the_store_refused_is_recorded_failed_once_it_is_back(
    own_postgres: PrivatePostgres,
) -> None:
    store = AsyncEventStore(Settings(database_url=own_postgres.url))
    execution = Execution(
        id=uuid.uuid4(), tenant_id="t-outage", agent_id="a", agent_version=1,
        request={"prompt": "x"}, model_requested="gpt-4.1-mini", stream=False,
    )  # fmt: skip
    execution.resolve_model("gpt-4.1-mini", "openai", {})
    await store.save(execution)
    stored = lambda eid: store.run(store.app.repository.get, uuid.UUID(eid))  # noqa: E731
    ends = UnrecordedEnds(store, stored)
    outcome = Outcome.model_validate(
        {"model_resolved": "gpt-4.1-mini", "provider": "openai", "cost_usd": 0.25}
    )
    execution.complete(outcome)
    execution.collect_events()  # the terminal event, as a save the store refused drops it
    own_postgres.stop()  # the pooled connections die with it
    told = ends.add(execution, outcome)
    assert (told.status, told.type, told.execution_id) == (
        503, "service_unavailable", str(execution.id),
    )  # fmt: skip
    own_postgres.start()
    for _ in range(600):
        if not ends.pending:
            break
        await asyncio.sleep(0.1)
    recorded = await stored(str(execution.id))
    assert recorded.status == "failed"
    assert recorded.outcome.error.type == "service_unavailable"
    assert recorded.outcome.cost_usd == 0.25  # what the provider charged stays counted
    store.close()
