"""The cyclic garbage collector's settings for the gateway's long-running processes.

Under load CPython's collector took 7-18 % of the hot processes' CPU (perf, bench/README.md,
2026-12-06, sixth session): each older-generation pass walks every object the process holds,
and most of them (modules, pydantic schemas, the actor's loaded state) live as long as the
process. `settle` runs once a process has started: what it holds then is frozen (`gc.freeze`:
kept, but out of the collector's walks), and the youngest generation is collected every
`YOUNG_THRESHOLD` allocations instead of CPython's 700, so most of a request's short-lived
objects are freed by their reference counts before a collection sees them. Cycles are still
collected, less often; memory held by such garbage is bounded by the threshold.
"""

from __future__ import annotations

import gc
import logging
import os

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 50_000  # CPython's default is 700
ENV = "CB_GC_YOUNG_THRESHOLD"  # an operator's override; 0 leaves the collector as CPython has it


def settle(collect: bool = True) -> None:
    """Freeze what the process holds now and widen the youngest generation; with `collect`,
    garbage goes first (a full collection: ~75 ms for a tenant actor's 200,000 objects, so
    its worker does it before it is given an actor, and the actor's start only freezes)."""
    threshold = young_threshold()
    if threshold <= 0:
        return
    if collect:
        gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(threshold, middle, oldest)


def young_threshold() -> int:
    """`CB_GC_YOUNG_THRESHOLD`, or `YOUNG_THRESHOLD` when unset or not a whole number."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return YOUNG_THRESHOLD
    try:
        return int(raw)
    except ValueError:
        log.warning("%s=%r is not a whole number; %d is used", ENV, raw, YOUNG_THRESHOLD)
        return YOUNG_THRESHOLD
