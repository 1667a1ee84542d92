"""`actors.heap.settle`: frozen start-up objects and a wider youngest generation, in a fresh
interpreter each (the test process's own collector is left as it is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from actors import heap

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import gc, json, weakref
from actors import heap

class Node:
    pass

def garbage_cycle():
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)

before = gc.get_threshold()[0]
dead = garbage_cycle()  # unreachable, but a cycle: only the collector frees it
heap.settle(collect={collect})
gc.collect()  # a full collection after the freeze never sees frozen objects
print(json.dumps({{
    "before": before,
    "threshold": gc.get_threshold()[0],
    "frozen": gc.get_freeze_count(),
    "cycle_freed": dead() is None,
}}))
"""


def _settle(collect: bool, env: dict[str, str] | None = None) -> dict[str, object]:
    environ = {k: v for k, v in os.environ.items() if k != heap.ENV} | (env or {})
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(collect=collect)],
        cwd=ROOT, env=environ, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_settle_freezes_what_the_process_holds_and_widens_the_youngest_generation() -> None:
    found = _settle(collect=True)
    assert found["before"] == 700  # CPython's own
    assert found["threshold"] == heap.YOUNG_THRESHOLD
    assert isinstance(found["frozen"], int) and found["frozen"] > 1_000
    assert found["cycle_freed"] is True  # collected before the freeze, not kept for good


def test_settle_without_collecting_freezes_garbage_too() -> None:
    """A tenant actor's start: its spare worker collected already, so only a freeze (cheap);
    what became garbage since is kept, a small price for no full collection at start."""
    found = _settle(collect=False)
    assert found["threshold"] == heap.YOUNG_THRESHOLD
    assert found["cycle_freed"] is False


def test_an_operator_can_leave_the_collector_as_cpython_has_it() -> None:
    found = _settle(collect=True, env={heap.ENV: "0"})
    assert found["threshold"] == 700
    assert found["frozen"] == 0


def test_a_threshold_that_is_no_number_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(heap.ENV, "lots")
    assert heap.young_threshold() == heap.YOUNG_THRESHOLD
    assert "is not a whole number" in caplog.text
    monkeypatch.setenv(heap.ENV, " 2000 ")
    assert heap.young_threshold() == 2000
