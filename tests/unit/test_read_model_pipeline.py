"""The read models' pipelined transactions on a real PostgreSQL (`projections.db`): the
projection's folds send their statements without awaiting each, read their own writes, and
roll back whole on an error."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import pq

from projections.db import ReadModelDB


def test_a_pipelined_read_model_transaction_reads_its_own_writes_and_rolls_back_whole(
    database: str,
) -> None:
    db = ReadModelDB(database, schema="pipelined")
    db.run("CREATE TABLE counts (k TEXT PRIMARY KEY, n INTEGER)")
    with db.transaction(pipelined=True) as cur:
        assert db._conn.pgconn.pipeline_status != pq.PipelineStatus.OFF  # sent unawaited
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("a", 1))
        cur.execute("UPDATE counts SET n = n + 1 WHERE k = ?", ("a",))
        assert cur.execute("SELECT n FROM counts WHERE k = ?", ("a",)).fetchone() == {"n": 2}
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("b", 1))
    with pytest.raises(psycopg.errors.UniqueViolation):
        with db.transaction(pipelined=True) as cur:
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("c", 1))
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("a", 1))  # taken
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("d", 1))
    rows = db.query("SELECT k, n FROM counts ORDER BY k")
    assert rows == [{"k": "a", "n": 2}, {"k": "b", "n": 1}]
    with db.transaction() as cur:  # the connection serves the next transaction
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("c", 3))
    assert db.query("SELECT n FROM counts WHERE k = ?", ("c",)) == [{"n": 3}]
    db.close()
