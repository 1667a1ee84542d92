"""CPU and time per event write to PostgreSQL, as a tenant actor makes them.

Writes batches of stored events through `actors.pg_event_writes.PostgresEventWrites` (the
store's own writer, from an event loop), one batch at a time, and prints the writer's CPU
(user and system), the database backend's CPU (read from /proc, so the server must run on
this machine) and the wall time per write. A fresh database is made and dropped.

    python bench/bench_pg_writes.py [--url postgresql://postgres@127.0.0.1:5432/postgres]
                                    [--writes 1500] [--events 3] [--size 1200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from eventsourcing.persistence import StoredEvent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.event_store import AsyncEventStore
from actors.pg_event_writes import PostgresEventWrites
from actors.settings import Settings

TOPIC = "domain.execution:Execution.Started"
WARMUP = 50


def _batch(events: int, size: int) -> list[StoredEvent]:
    originator = uuid.uuid4()
    return [
        StoredEvent(originator_id=originator, originator_version=v, topic=TOPIC,
                    state=os.urandom(size))
        for v in range(1, events + 1)
    ]  # fmt: skip


def _backend_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(url: str, writes: int, events: int, size: int) -> dict[str, float]:
    """Per-write figures of `writes` sequential writes of `events` events of `size` bytes."""
    store = AsyncEventStore(Settings(database_url=url, data_dir=tempfile.mkdtemp()))
    try:
        writer = store._writes
        assert isinstance(writer, PostgresEventWrites)
        for _ in range(WARMUP):
            await writer.insert(_batch(events, size))
        assert writer._conn is not None
        backend = writer._conn.info.backend_pid
        batches = [_batch(events, size) for _ in range(writes)]
        before, server = resource.getrusage(resource.RUSAGE_SELF), _backend_cpu_s(backend)
        started = time.perf_counter()
        for batch in batches:
            await writer.insert(batch)
        wall = time.perf_counter() - started
        server = _backend_cpu_s(backend) - server
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        store.close()
    per = 1000 / writes
    return {
        "writer_user_ms": (after.ru_utime - before.ru_utime) * per,
        "writer_sys_ms": (after.ru_stime - before.ru_stime) * per,
        "backend_ms": server * per,
        "wall_ms": wall * per,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a database to make the benchmark's own database from")  # fmt: skip
    parser.add_argument("--writes", type=int, default=1500)
    parser.add_argument("--events", type=int, default=3, help="events per write")
    parser.add_argument("--size", type=int, default=1200, help="bytes of state per event")
    args = parser.parse_args()
    name = f"cb_bench_writes_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(args.url, autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(args.url)
    url = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        figures = asyncio.run(measure(url, args.writes, args.events, args.size))
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()
    print(
        f"{args.writes} writes of {args.events} events x {args.size} B, per write: "
        f"writer {figures['writer_user_ms']:.3f} ms user + {figures['writer_sys_ms']:.3f} ms sys, "
        f"database backend {figures['backend_ms']:.3f} ms, wall {figures['wall_ms']:.3f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
