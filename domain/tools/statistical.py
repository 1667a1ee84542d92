"""`statistical_analyzer`: summary, z-scores, outliers, moving averages, trend, correlation.

Standard deviation is the sample one (n − 1); quartiles are inclusive (Excel's QUARTILE.INC).
A value is an outlier when |z| exceeds `z_threshold` or it lies beyond Tukey's outer fence
(3 IQR past the quartiles), and each outlier says which rule flagged it; a value past only
the inner fence (1.5 IQR) is a possible outlier.
"""

from __future__ import annotations

import statistics
from typing import Any

from domain.tools.base import BuiltinTool, ToolInputError, number

MAX_VALUES = 100_000


def _round(value: float) -> float:
    return round(value, 6)


def summary(values: list[float]) -> dict[str, float]:
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return {
        "count": len(values),
        "mean": _round(statistics.fmean(values)),
        "median": _round(median),
        "std_dev": _round(statistics.stdev(values)),
        "min": min(values),
        "max": max(values),
        "q1": _round(q1),
        "q3": _round(q3),
        "iqr": _round(q3 - q1),
    }


def z_scores(values: list[float]) -> list[float]:
    mean, sd = statistics.fmean(values), statistics.stdev(values)
    return [_round((v - mean) / sd) if sd else 0.0 for v in values]


def outliers(
    values: list[float], labels: list[str], z_threshold: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(outliers, possible outliers): |z| over the threshold or beyond Tukey's outer fence
    (3 IQR) makes an outlier; beyond the inner fence (1.5 IQR) only, a possible one."""
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    iqr = q3 - q1
    found: list[dict[str, Any]] = []
    possible: list[dict[str, Any]] = []
    for index, (value, z) in enumerate(zip(values, z_scores(values), strict=True)):
        entry = {"index": index, "label": labels[index], "value": value, "z_score": z,
                 "direction": "high" if value > q3 else "low"}  # fmt: skip
        reasons = [name for name, hit in (("z_score", abs(z) > z_threshold),
                                          ("iqr", not q1 - 3 * iqr <= value <= q3 + 3 * iqr))
                   if hit]  # fmt: skip
        if reasons:
            found.append({**entry, "reasons": reasons})
        elif not q1 - 1.5 * iqr <= value <= q3 + 1.5 * iqr:
            possible.append({**entry, "reasons": ["iqr_mild"]})
    return found, possible


def moving_average(values: list[float], window: int) -> list[float]:
    if window > len(values):
        return []
    starts = range(len(values) - window + 1)
    return [_round(statistics.fmean(values[i : i + window])) for i in starts]


def trend(values: list[float]) -> dict[str, Any]:
    """Least-squares line over the positions 0…n−1, and how much of the variation it explains."""
    positions = list(range(len(values)))
    slope, intercept = statistics.linear_regression(positions, values)
    r = correlation(positions, values)
    r_squared = r * r if r is not None else 0.0
    direction = "flat" if r_squared < 0.1 else ("increasing" if slope > 0 else "decreasing")
    return {"slope": _round(slope), "intercept": _round(intercept),
            "r_squared": _round(r_squared), "direction": direction}  # fmt: skip


def correlation(xs: list[float], ys: list[float]) -> float | None:
    """Pearson's r, or None when either series is constant."""
    try:
        return _round(statistics.correlation(xs, ys))
    except statistics.StatisticsError:
        return None


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "values": {"type": "array", "items": {"type": "number"}, "minItems": 3,
                   "maxItems": MAX_VALUES, "description": "The series to analyse, in order"},
        "labels": {"type": "array", "items": {"type": "string"},
                   "description": "A label per value (e.g. dates), used in the outliers"},
        "second_series": {"type": "array", "items": {"type": "number"},
                          "description": "A second series of the same length: correlated with "
                          "the first and checked for outliers too"},
        "window": {"type": "integer", "minimum": 2, "default": 3,
                   "description": "Window of the moving average"},
        "z_threshold": number("|z| above which a value is an outlier", default=2.0,
                              exclusiveMinimum=0),
    },
    "required": ["values"],
}  # fmt: skip


def compute(args: dict[str, Any]) -> dict[str, Any]:
    values: list[float] = args["values"]
    labels = args.get("labels") or [str(i) for i in range(len(values))]
    second: list[float] | None = args.get("second_series")
    for name, other in (("labels", labels), ("second_series", second)):
        if other is not None and len(other) != len(values):
            raise ToolInputError(f"{name} must have as many items as values ({len(values)})")
    found, possible = outliers(values, labels, args["z_threshold"])
    out: dict[str, Any] = {
        "summary": summary(values),
        "z_scores": z_scores(values),
        "outliers": found,
        "possible_outliers": possible,
        "moving_average": {"window": args["window"],
                           "values": moving_average(values, args["window"])},
        "trend": trend(values),
    }  # fmt: skip
    if second is not None:
        found_2, possible_2 = outliers(second, labels, args["z_threshold"])
        shared = {o["index"] for o in found} & {o["index"] for o in found_2}
        out.update(
            second_series_summary=summary(second),
            second_series_outliers=found_2,
            second_series_possible_outliers=possible_2,
            correlation=correlation(values, second),
            outliers_in_both=[labels[i] for i in sorted(shared)],
        )
    return out


STATISTICAL_ANALYZER = BuiltinTool(
    name="statistical_analyzer",
    description=(
        "Statistics of a numeric series: summary (mean, median, sample std dev, quartiles), "
        "z-scores, outliers by z-score and IQR with their labels, moving average, linear "
        "trend, and with a second series its correlation and shared outliers."
    ),
    input_schema=SCHEMA,
    compute=compute,
)
