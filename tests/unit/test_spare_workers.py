"""Spare tenant actor workers: the runtime environment a spare must have, and how many a
process asks the raylet for."""

from __future__ import annotations

import asyncio
import json
from collections import deque

from actors import spare_workers
from actors.spare_workers import (
    KEEP_ALIVE_S,
    PRELOAD,
    REFILL_S,
    SpareWorkers,
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
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.asked: list[int] = []

    async def _prestart(self, wanted: int) -> None:
        self.asked.append(wanted)


async def _settle(spares: SpareWorkers) -> None:
    await asyncio.gather(*spares._tasks)


def test_the_first_start_fills_the_pool_and_each_later_start_replaces_one() -> None:
    async def run() -> list[int]:
        spares = Recording(3)
        for _ in range(3):
            spares.started()
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [3, 1, 1]


def test_a_burst_beyond_the_pool_asks_for_count_replacements_per_refill_window() -> None:
    async def run() -> list[int]:
        spares = Recording(2)
        for _ in range(6):  # the fill and one replacement (two asks); the rest start without
            spares.started()
        spares.asked_at = deque(t - REFILL_S - 1 for t in spares.asked_at)  # a window later
        spares.started()
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [2, 1, 1]


def test_after_the_keep_alive_the_next_start_fills_the_pool_again() -> None:
    async def run() -> list[int]:
        spares = Recording(2)
        spares.started()
        assert spares.filled_at is not None
        spares.filled_at -= KEEP_ALIVE_S  # the spares of that fill have expired
        spares.asked_at.clear()
        spares.started()
        spares.started()
        await _settle(spares)
        return spares.asked

    assert asyncio.run(run()) == [2, 2, 1]


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
