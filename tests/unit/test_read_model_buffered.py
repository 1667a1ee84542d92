"""The read models' buffered transactions on a real PostgreSQL (`projections.db`): a fold's
writes wait and go with the next SELECT or the commit as one query, the SELECT reads them,
the whole transaction rolls back on an error, and values round-trip as literals."""

from __future__ import annotations

import math
from typing import Any

import psycopg
import pytest

from projections.db import ReadModelDB, literal, rendered


class _Sent:
    """A cursor that notes each query it is given."""

    def __init__(self, cur: Any, sent: list[bytes]) -> None:
        self._cur, self._sent = cur, sent

    def execute(self, query: bytes) -> Any:
        self._sent.append(query)
        return self._cur.execute(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cur, name)


def test_a_buffered_transaction_sends_writes_with_the_next_read_and_rolls_back_whole(
    database: str,
) -> None:
    db = ReadModelDB(database, schema="buffered")
    db.run("CREATE TABLE counts (k TEXT PRIMARY KEY, n INTEGER)")
    sent: list[bytes] = []
    with db.transaction(buffered=True) as cur:
        cur._cur = _Sent(cur._cur, sent)
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("a", 1))
        cur.execute("UPDATE counts SET n = n + 1 WHERE k = ?", ("a",))
        assert sent == []  # nothing went out before a read needed it
        assert cur.execute("SELECT n FROM counts WHERE k = ?", ("a",)).fetchone() == {"n": 2}
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("b", 1))
        with pytest.raises(TypeError):
            cur.execute("UPDATE counts SET n = 0 WHERE k = ?", ("b",)).fetchone()
    assert len(sent) == 2  # the writes with the read, then the rest with the commit
    assert sent[0].startswith(b"BEGIN;INSERT") and sent[1].endswith(b";COMMIT")
    with pytest.raises(psycopg.errors.UniqueViolation):
        with db.transaction(buffered=True) as cur:
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("c", 1))
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("a", 1))  # taken
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("d", 1))
    with pytest.raises(RuntimeError):  # an error of the fold's own, after a read went out
        with db.transaction(buffered=True) as cur:
            cur.execute("INSERT INTO counts VALUES (?, ?)", ("e", 1))
            cur.execute("SELECT n FROM counts WHERE k = ?", ("e",)).fetchone()
            raise RuntimeError("handler failed")
    rows = db.query("SELECT k, n FROM counts ORDER BY k")
    assert rows == [{"k": "a", "n": 2}, {"k": "b", "n": 0}]
    with db.transaction() as cur:  # the connection serves the next transaction
        cur.execute("INSERT INTO counts VALUES (?, ?)", ("c", 3))
    assert db.query("SELECT n FROM counts WHERE k = ?", ("c",)) == [{"n": 3}]
    db.close()


def test_values_round_trip_as_literals_whatever_they_hold(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:  # as a server may be set up
        conn.execute(f'ALTER DATABASE "{conn.info.dbname}" SET standard_conforming_strings = off')
    db = ReadModelDB(database, schema="literals")  # its connection turns it on for itself
    assert db._conn.info.parameter_status("standard_conforming_strings") == "on"
    db.run(
        "CREATE TABLE v (id INTEGER PRIMARY KEY, t TEXT, f DOUBLE PRECISION, b BOOLEAN,"
        " n BIGINT, at TIMESTAMPTZ)"
    )
    texts = [
        "it's %s 100% %(x)s",
        "back\\slash \\x00 'quoted'",
        "€ ünïcode ✓",
        "?",
        "",
        "a;b--c /* d */",
    ]
    floats = [0.1, -2.5e-300, 1e300, math.inf, -math.inf, 3.0]
    with db.transaction(buffered=True) as cur:
        for i, (text, number) in enumerate(zip(texts, floats, strict=True)):
            cur.execute(
                "INSERT INTO v VALUES (?, ?, ?, ?, ?, ?)",
                (i, text, number, i % 2 == 0, 2**62 + i, "2026-12-06T10:00:00.000000Z"),
            )
        cur.execute("INSERT INTO v (id, t, f) VALUES (?, ?, ?)", (99, None, math.nan))
    rows = db.query("SELECT * FROM v ORDER BY id")
    assert [r["t"] for r in rows] == [*texts, None]
    assert [r["f"] for r in rows[:-1]] == floats and math.isnan(rows[-1]["f"])
    assert [r["b"] for r in rows[:-1]] == [True, False] * 3
    assert [r["n"] for r in rows[:-1]] == [2**62 + i for i in range(6)]
    assert rows[0]["at"].timestamp() == 1796551200.0
    with pytest.raises(ValueError):
        literal("nul \x00 inside")
    with pytest.raises(TypeError):
        literal(b"bytes")
    with pytest.raises(ValueError):
        rendered("SELECT ?, ?", (1,))
    db.close()
