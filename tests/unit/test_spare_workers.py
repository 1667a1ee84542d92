"""Spare tenant actor workers: the runtime environment a spare must have, how many a process
asks the raylet for, and which registered spares count as ready."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from pathlib import Path

from actors import spare_workers
from actors.spare_workers import (
    IDLE_TITLE,
    PENDING_S,
    PRELOAD,
    READY,
    REFILL_S,
    STARTING,
    Pool,
    SpareWorkers,
    count_spares,
    merged_runtime_env,
)

HOOK = spare_workers.WORKER_PROCESS_SETUP_HOOK_ENV_VAR


def test_the_merged_environment_is_ray_s_compact_sorted_json_with_the_preload_hook() -> None:
    parent = json.dumps({"env_vars": {"ZED": "1", "CB_DATA_DIR": "/data/é"}, "config": {}})
    merged = merged_runtime_env(parent)
    assert merged == (
        f'{{"config":{{}},"env_vars":{{"CB_DATA_DIR":"/data/é","ZED":"1","{HOOK}":"{PRELOAD}"}}}}'
    )


def test_a_parent_without_a_runtime_environment_gives_only_the_hook() -> None:
    assert merged_runtime_env("") == f'{{"env_vars":{{"{HOOK}":"{PRELOAD}"}}}}'
    assert merged_runtime_env("{}") == merged_runtime_env("")


def test_the_actor_option_sets_the_hook_ray_runs_at_worker_start() -> None:
    assert spare_workers.actor_runtime_env() == {"env_vars": {HOOK: PRELOAD}}


class Recording(SpareWorkers):
    """Asks nobody: records what it would ask the raylet for, with `now` as the node's pool."""

    def __init__(self, count: int) -> None:
        super().__init__(count, refill_s=0.05, pending_s=0.02, ask_after_s=0.0)
        self.asked: list[int] = []
        self.now = Pool()

    def pool(self) -> Pool:
        return self.now

    async def _prestart(self, wanted: int) -> None:
        self.asked.append(wanted)
        self.now = Pool(self.now.starting + wanted, self.now.ready)  # they start at once


async def _asked(spares: Recording, times: int) -> None:
    """Until `spares` has asked `times` times (however slow the machine)."""
    async with asyncio.timeout(10):
        while len(spares.asked) < times:
            await asyncio.sleep(0.001)


async def _settle(spares: SpareWorkers) -> None:
    while spares._tasks:
        await asyncio.gather(*spares._tasks, return_exceptions=True)


def test_the_first_start_fills_the_pool_and_a_full_pool_asks_for_nothing_more() -> None:
    async def run() -> list[int]:
        spares = Recording(3)
        spares.started()
        await _asked(spares, 1)
        spares.now = Pool(ready=3)  # they registered
        await _settle(spares)
        spares.started()  # a later start that found no spare ready: it started its own
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [3]


def test_a_start_that_took_a_spare_has_it_replaced() -> None:
    async def run() -> list[int]:
        spares = Recording(2)
        spares.now = Pool(ready=1)  # counted once the new actor took one of two
        spares.started()
        await _asked(spares, 1)
        spares.now = Pool(starting=1, ready=1)  # its replacement is importing
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [1]


def test_occasional_starts_each_find_a_spare_ready() -> None:
    async def run() -> list[int]:
        spares = Recording(2)
        for started in range(1, 5):  # each start takes one; its replacement registers next
            spares.now = Pool(ready=1)
            spares.started()
            await _asked(spares, started)
            spares.now = Pool(ready=2)
            await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [1, 1, 1, 1]


def test_a_spare_is_asked_for_only_after_the_start_had_time_to_take_one() -> None:
    async def run() -> tuple[list[int], list[int]]:
        spares = Recording(1)
        spares.ask_after_s = 0.05
        spares.now = Pool(ready=1)  # the start has not taken it yet
        spares.started()
        await asyncio.sleep(0.01)
        before = list(spares.asked)
        spares.now = Pool()  # taken
        await _settle(spares)
        return before, spares.asked

    assert asyncio.run(run()) == ([], [1])


def test_a_burst_asks_for_nothing_more_until_starts_pause_then_refills_the_pool() -> None:
    async def run() -> tuple[list[int], list[int]]:
        spares = Recording(2)
        for _ in range(6):  # the burst takes every spare, and the ones asked during it
            spares.started()
            await asyncio.sleep(0.005)
        during = list(spares.asked)
        spares.now = Pool()  # the burst's starts took the spares asked during it
        await _settle(spares)  # starts paused: the pool is asked for again
        return during, spares.asked

    during, after = asyncio.run(run())
    assert during == [2]
    assert after == [2, 2]


def test_spares_asked_count_as_pending_until_they_register_as_starting() -> None:
    spares = SpareWorkers(2)
    spares.asked_at.append((100.0, 2))
    assert spares.missing(Pool(), 100.0 + PENDING_S / 2) == 0  # Python still starting
    assert spares.missing(Pool(starting=2), 100.0 + PENDING_S * 2) == 0
    assert spares.missing(Pool(ready=1), 100.0 + PENDING_S * 2) == 1  # one was taken
    assert spares.missing(Pool(ready=5), 200.0) == 0


def test_more_starts_than_spares_within_the_refill_window_is_a_burst() -> None:
    spares = SpareWorkers(2)
    spares.started_at.extend([10.0, 11.0])
    assert spares.missing(Pool(), 12.0) == 2  # occasional starts: replace what they took
    spares.started_at.append(12.0)
    assert spares.missing(Pool(), 12.0) == 0
    assert spares.missing(Pool(), 12.0 + REFILL_S + 1) == 2  # paused: top up


def test_no_spares_asks_for_none() -> None:
    async def run() -> list[int]:
        spares = Recording(0)
        spares.started()
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == []


def test_outside_an_event_loop_nothing_is_asked() -> None:
    spares = Recording(2)
    spares.started()  # a script's call: no loop to ask from
    assert spares.asked == [] and not spares._tasks


def test_only_registered_processes_that_are_still_idle_workers_count_as_spares(
    tmp_path: Path,
) -> None:
    idle = subprocess.Popen(["bash", "-c", f"exec -a {IDLE_TITLE.decode()} sleep 30"])
    try:
        deadline = time.monotonic() + 5
        while Path(f"/proc/{idle.pid}/cmdline").read_bytes().split(b"\0")[0] != IDLE_TITLE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        (tmp_path / f"{idle.pid}.{READY}").touch()
        for pid in (os.getpid(), 2**22 + 7):  # an actor's process, one that is gone
            (tmp_path / f"{pid}.{STARTING}").touch()
        assert count_spares(tmp_path) == Pool(ready=1)
        assert [p.name for p in tmp_path.iterdir()] == [f"{idle.pid}.{READY}"]
        (tmp_path / f"{idle.pid}.{READY}").rename(tmp_path / f"{idle.pid}.{STARTING}")
        assert count_spares(tmp_path) == Pool(starting=1)
    finally:
        idle.kill()
        idle.wait()
    assert count_spares(tmp_path) == Pool() and not list(tmp_path.iterdir())
