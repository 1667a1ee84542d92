"""The latency histograms: every percentile within the documented relative error, and
merging equal to histogramming the union."""

from __future__ import annotations

import math
import random

from domain import histogram


def _exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def test_each_percentile_is_within_the_relative_error() -> None:
    rng = random.Random(7)
    for shape in (lambda: rng.lognormvariate(5, 1.5), lambda: rng.uniform(0.5, 20_000)):
        values = [shape() for _ in range(2_000)]
        counts = histogram.of(values)
        for q in (0.0, 0.01, 0.5, 0.9, 0.99, 1.0):
            exact, estimate = _exact(values, q), histogram.quantile(counts, q)
            assert estimate is not None
            assert abs(estimate - exact) / exact <= histogram.RELATIVE_ERROR + 1e-9
    assert histogram.RELATIVE_ERROR <= 0.05


def test_merged_histograms_answer_as_one() -> None:
    rng = random.Random(11)
    a = [rng.uniform(1, 900) for _ in range(300)]
    b = [rng.uniform(50, 5_000) for _ in range(500)]
    merged = histogram.merge(histogram.of(a), histogram.of(b))
    assert merged == histogram.of(a + b)
    assert histogram.loads(histogram.dumps(merged)) == merged
    for q in (0.5, 0.9, 0.99):
        assert histogram.quantile(merged, q) == histogram.quantile(histogram.of(a + b), q)


def test_edges() -> None:
    assert histogram.quantile({}, 0.5) is None
    assert histogram.quantile(histogram.of([0.0]), 0.5) == round(
        histogram.representative(histogram.bucket(histogram.MIN_MS)), 3
    )
    one = histogram.of([123.4])
    assert abs(histogram.quantile(one, 0.99) - 123.4) / 123.4 <= histogram.RELATIVE_ERROR
