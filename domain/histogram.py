"""Mergeable latency histograms: fixed log-spaced buckets, ≤ 5 % relative error.

Bucket `i` holds the values in (GAMMA**(i-1), GAMMA**i] milliseconds (values are clamped
to [MIN_MS, MAX_MS]); it answers for them with 2·GAMMA**i / (GAMMA + 1), which is within
(GAMMA − 1)/(GAMMA + 1) ≈ 4.76 % of every value in the bucket. The scheme is fixed, so two
histograms merge by adding their counts, and any range or grouping of roll-ups gives the
same percentiles as a histogram of its executions.

A percentile q of n values is the value of rank ⌊q·(n − 1)⌋ (0-based, ascending), i.e.
numpy's `method="lower"`; the histogram answers with that value's bucket.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping

GAMMA = 1.1
RELATIVE_ERROR = (GAMMA - 1) / (GAMMA + 1)
MIN_MS = 0.01
MAX_MS = 1e8
_LOG_GAMMA = math.log(GAMMA)

Histogram = dict[int, int]


def bucket(value_ms: float) -> int:
    """The bucket that holds `value_ms`."""
    clamped = min(max(value_ms, MIN_MS), MAX_MS)
    return math.ceil(math.log(clamped) / _LOG_GAMMA - 1e-9)


def representative(index: int) -> float:
    """The value a bucket answers with."""
    return 2 * GAMMA**index / (GAMMA + 1)


def of(values: Iterable[float]) -> Histogram:
    counts: Histogram = {}
    for value in values:
        add(counts, value)
    return counts


def add(counts: Histogram, value_ms: float, times: int = 1) -> None:
    index = bucket(value_ms)
    counts[index] = counts.get(index, 0) + times


def merge(into: Histogram, other: Mapping[int, int]) -> Histogram:
    for index, count in other.items():
        into[index] = into.get(index, 0) + count
    return into


def quantile(counts: Mapping[int, int], q: float) -> float | None:
    """The value of rank ⌊q·(n − 1)⌋, to within RELATIVE_ERROR; None when empty."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = math.floor(q * (total - 1))
    seen = 0
    for index in sorted(counts):
        seen += counts[index]
        if seen > rank:
            return round(representative(index), 3)
    raise AssertionError("unreachable: the ranks add up to the total")


def dumps(counts: Mapping[int, int]) -> str:
    """Stored form: a JSON object of bucket index → count, sorted."""
    return json.dumps({str(k): counts[k] for k in sorted(counts)}, separators=(",", ":"))


def loads(text: str | None) -> Histogram:
    return {int(k): int(v) for k, v in json.loads(text or "{}").items()}
