"""Metric values in memory: a process's recorder of deltas, the cluster's totals, and their
Prometheus text rendering.

A process records into a `Recorder` (a lock and a dict update per call) and hands its deltas
to the cluster's totals (`actors/metrics.py` says when); totals only ever add deltas, so a
counter never goes back when the process that produced part of it restarts. Gauges are a
process's current values: the totals keep each process's last report and drop it once the
process stops reporting.
"""

from __future__ import annotations

import hashlib
import math
import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.metric_families import BY_NAME, FAMILIES, Family, Kind

Labels = tuple[str, ...]
Key = tuple[str, Labels]
TENANT_MODES = ("label", "hashed", "off")


def tenant_value(tenant_id: str, mode: str) -> str | None:
    """The `tenant` label's value under the operator's choice (None: no label)."""
    if mode == "off":
        return None
    if mode == "hashed":
        return hashlib.sha256(tenant_id.encode()).hexdigest()[:12]
    return tenant_id


@dataclass
class Batch:
    """One process's report: counter and histogram deltas since the last, gauges now."""

    counters: dict[Key, float] = field(default_factory=dict)
    histograms: dict[Key, list[float]] = field(default_factory=dict)  # per-bucket counts, sum
    gauges: dict[Key, float] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.counters or self.histograms)


class Recorder:
    """A process's metrics since its last report; safe to call from any thread."""

    def __init__(self, tenant_mode: str = "label") -> None:
        self.tenant_mode = tenant_mode
        self._lock = threading.Lock()
        self._batch = Batch()
        self._gauges: dict[Key, float] = {}
        self.pending = 0  # counts and observations recorded since the last `take`
        self.collectors: dict[str, Callable[[Recorder], None]] = {}  # gauges, at each take

    def _labels(self, family: Family, labels: Labels, tenant: str | None) -> Labels:
        if family.tenant and tenant is not None:
            shown = tenant_value(tenant, self.tenant_mode)
            if shown is not None:
                return (*labels, shown)
        return labels

    def inc(self, name: str, labels: Labels = (), value: float = 1.0,
            tenant: str | None = None) -> None:  # fmt: skip
        key = (name, self._labels(BY_NAME[name], labels, tenant))
        with self._lock:
            counters = self._batch.counters
            counters[key] = counters.get(key, 0.0) + value
            self.pending += 1

    def observe(self, name: str, value: float, labels: Labels = (),
                tenant: str | None = None) -> None:  # fmt: skip
        family = BY_NAME[name]
        key = (name, self._labels(family, labels, tenant))
        slot = bisect_left(family.buckets, value)
        with self._lock:
            row = self._batch.histograms.get(key)
            if row is None:
                row = self._batch.histograms[key] = [0.0] * (len(family.buckets) + 2)
            row[slot] += 1
            row[-1] += value
            self.pending += 1

    def set(self, name: str, value: float, labels: Labels = ()) -> None:
        with self._lock:
            self._gauges[(name, labels)] = value

    def gauges_now(self) -> dict[Key, float]:
        """The gauges as the collectors see them now (the deltas stay where they are)."""
        for collect in list(self.collectors.values()):
            collect(self)
        with self._lock:
            return dict(self._gauges)

    def take(self, gauges: dict[Key, float] | None = None) -> Batch:
        """The deltas since the last `take`, and `gauges` (by default, the gauges as the
        collectors see them now)."""
        if gauges is None:
            gauges = self.gauges_now()
        with self._lock:
            batch, self._batch = self._batch, Batch()
            self.pending = 0
        batch.gauges = gauges
        return batch


class Totals:
    """The cluster's metrics: every process's deltas added up, and live processes' gauges."""

    def __init__(self, stale_s: float = 5.0) -> None:
        self.stale_s = stale_s
        self.counters: dict[Key, float] = {}
        self.histograms: dict[Key, list[float]] = {}
        self.gauges: dict[str, tuple[float, dict[Key, float]]] = {}  # source → (seen, values)

    def add(self, source: str, batch: Batch, now: float) -> None:
        for key, value in batch.counters.items():
            self.counters[key] = self.counters.get(key, 0.0) + value
        for key, row in batch.histograms.items():
            have = self.histograms.get(key)
            if have is None:
                self.histograms[key] = list(row)
            else:
                for i, value in enumerate(row):
                    have[i] += value
        self.gauges[source] = (now, batch.gauges)

    def forget(self, source: str) -> None:
        """A process said goodbye: its gauges go now (its counts stay)."""
        self.gauges.pop(source, None)

    def live_gauges(self, now: float) -> dict[Key, float]:
        for source in [s for s, (seen, _) in self.gauges.items() if now - seen > self.stale_s]:
            del self.gauges[source]
        out: dict[Key, float] = {}
        for _, values in self.gauges.values():
            for key, value in values.items():
                if key not in out:
                    out[key] = value
                elif BY_NAME[key[0]].gauge_sum:
                    out[key] += value
                else:
                    out[key] = max(out[key], value)
        return out

    def render(self, now: float) -> str:
        """Prometheus text exposition (format 0.0.4) of every family."""
        gauges = self.live_gauges(now)
        lines: list[str] = []
        for family in FAMILIES:
            if family.kind is Kind.COUNTER:
                rows = _rows(self.counters, family.name)
                _header(lines, family)
                for labels, value in rows:
                    lines.append(f"{family.name}{_label_text(family, labels)} {_num(value)}")
            elif family.kind is Kind.GAUGE:
                _header(lines, family)
                for labels, value in _rows(gauges, family.name):
                    lines.append(f"{family.name}{_label_text(family, labels)} {_num(value)}")
            else:
                _header(lines, family)
                for labels, row in _rows(self.histograms, family.name):
                    _histogram_lines(lines, family, labels, row)
        return "\n".join(lines) + "\n"


def _rows(values: dict[Key, object], name: str) -> list[tuple[Labels, object]]:
    return sorted((labels, v) for (n, labels), v in values.items() if n == name)  # type: ignore[misc]


def _header(lines: list[str], family: Family) -> None:
    lines.append(f"# HELP {family.name} {family.help}")
    lines.append(f"# TYPE {family.name} {family.kind.value}")


def _histogram_lines(lines: list[str], family: Family, labels: Labels, row: object) -> None:
    assert isinstance(row, list)
    running = 0.0
    for bound, count in zip(family.buckets, row, strict=False):
        running += count
        le = _label_text(family, labels, ("le", _num(bound)))
        lines.append(f"{family.name}_bucket{le} {_num(running)}")
    running += row[len(family.buckets)]
    lines.append(
        f"{family.name}_bucket{_label_text(family, labels, ('le', '+Inf'))} {_num(running)}"
    )
    lines.append(f"{family.name}_sum{_label_text(family, labels)} {_num(row[-1])}")
    lines.append(f"{family.name}_count{_label_text(family, labels)} {_num(running)}")


def _label_text(family: Family, values: Labels, extra: tuple[str, str] | None = None) -> str:
    names = (*family.labels, "tenant") if len(values) > len(family.labels) else family.labels
    pairs = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=False)]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
