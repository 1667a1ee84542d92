"""CPU and time per execution's event writes to SQLite, as a tenant actor makes them.

Saves executions through `actors.event_store.AsyncEventStore` (its start, then its end:
two group-committed writes, as `/execute` makes them), one execution at a time, on a fresh
SQLite store: by the library's `Application.save` (the baseline), by the store's own writer
(`actors.sqlite_event_writes`) with both writes flushed, and by that writer as the runner
uses it (the start unsynced, the end flushed, both from the event loop), and that with the
flushed end on the store's thread instead, interleaved; prints this process's CPU (user
and system, all threads) and the wall time per execution.

    python bench/bench_sqlite_writes.py [--executions 1000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.event_store import AsyncEventStore
from actors.settings import Settings
from domain.execution import Execution
from domain.results import Outcome

WARMUP = 50
OUTCOME = {
    "model_resolved": "gpt-4.1-mini",
    "provider": "openai",
    "duration_ms": 5.0,
    "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
    "answer": {"content": "Hello! How can I help you today?"},
}


async def _one(store: AsyncEventStore, start_synced: bool) -> None:
    execution = Execution(
        id=uuid.uuid4(), tenant_id="bench", agent_id="a", agent_version=1,
        request={"prompt": "hello there " * 20}, model_requested="cb:fast", stream=False,
    )  # fmt: skip
    execution.resolve_model("gpt-4.1-mini", "openai", {})
    await store.save_events(execution.collect_events(), synced=start_synced)
    execution.complete(Outcome.model_validate(OUTCOME))
    await store.save(execution)


def _flushed_on_thread(store: AsyncEventStore) -> None:
    writes = store._sqlite_writes
    assert writes is not None
    at_once = writes.insert_now
    writes.insert_now = lambda rows, synced=False: not synced and at_once(rows)  # type: ignore[method-assign]


async def measure(
    library: bool, start_synced: bool, executions: int, end_on_thread: bool = False
) -> dict[str, float]:
    """Per-execution figures of `executions` sequential executions (two writes each)."""
    store = AsyncEventStore(Settings(data_dir=tempfile.mkdtemp()))
    if library:
        store._sqlite_writes = None  # the store's fallback: `Application.save` on the pool
    elif end_on_thread:
        _flushed_on_thread(store)
    try:
        for _ in range(WARMUP):
            await _one(store, start_synced)
        before, started = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(executions):
            await _one(store, start_synced)
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - started
    finally:
        store.close()
    per = 1000 / executions
    return {
        "user_ms": (after.ru_utime - before.ru_utime) * per,
        "sys_ms": (after.ru_stime - before.ru_stime) * per,
        "wall_ms": wall * per,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("writer                          user ms  sys ms  wall ms   (per execution: 2 writes)")
    writers = (
        (True, True, False, "Application.save (base)"),
        (False, True, False, "both flushed, at once"),
        (False, False, True, "start not, end on the thread"),
        (False, False, False, "start not, both at once"),
    )
    for _ in range(args.rounds):
        for library, start_synced, end_on_thread, name in writers:
            f = asyncio.run(measure(library, start_synced, args.executions, end_on_thread))
            print(f"{name:<30} {f['user_ms']:8.3f} {f['sys_ms']:7.3f} {f['wall_ms']:8.3f}")


if __name__ == "__main__":
    main()
