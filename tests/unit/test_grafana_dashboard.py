"""docs/grafana-dashboard.json and the Metrics section of docs/operations.md, checked against
the metric families (domain/metric_families.py): renaming a metric or a label fails here.

The dashboard's PromQL is read with a few regular expressions (enough for the forms it
uses: selectors, `by`/`without` groupings, functions, ranges); `problems` turns down what
it does not understand rather than letting it pass.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.metric_families import BY_NAME, FAMILIES, Family, Kind

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana-dashboard.json"
OPERATIONS = ROOT / "docs" / "operations.md"

SCRAPE_LABELS = frozenset({"instance", "job"})  # Prometheus adds them to every series
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
GRAFANA_VARIABLES = frozenset({"__rate_interval", "__range", "__interval"})
TENANT_MATCHER = ("tenant", "=~", "$tenant")

IDENT = re.compile(r"(?<![\w.$:])[A-Za-z_:][\w:]*")
BRACES = re.compile(r"\{[^}]*\}")
SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)?\s*\{([^}]*)\}")
MATCHER = re.compile(r'\s*([A-Za-z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
RANGE = re.compile(r"\[[^\]]*\]")
GROUPING = re.compile(r"\b(by|without|on|ignoring)\s*\(([^)]*)\)")
RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase)\s*\(\s*([A-Za-z_:][\w:]*)")
AGGREGATION = re.compile(r"\b(sum|min|max|avg|count|group|stddev|stdvar)\s*\(")
KEYWORDS = frozenset({"or", "and", "unless", "bool", "offset"})


def family_of(series: str) -> tuple[Family, str] | None:
    """The family a series name belongs to, and its histogram suffix ('' when none)."""
    if series in BY_NAME:
        return BY_NAME[series], ""
    for suffix in HISTOGRAM_SERIES:
        base = series.removesuffix(suffix)
        if base != series and base in BY_NAME and BY_NAME[base].kind is Kind.HISTOGRAM:
            return BY_NAME[base], suffix
    return None


def labels_of(series: str) -> frozenset[str]:
    """Every label a series of this name can carry once scraped."""
    found = family_of(series)
    assert found is not None
    family, suffix = found
    extra = {"tenant"} if family.tenant else set()
    if suffix == "_bucket":
        extra.add("le")
    return frozenset(family.labels) | extra | SCRAPE_LABELS


def _blank(text: str, pattern: re.Pattern[str]) -> str:
    """`text` with the matches of `pattern` replaced by as many spaces (positions kept)."""
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _group_end(text: str, start: int) -> int:
    """The index just past the parenthesis closing the one at `start`."""
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i + 1
    raise ValueError(f"unbalanced parentheses: {text!r}")


def _group_start(text: str, end: int) -> int:
    """The index of the parenthesis opening the one closing at `end - 1`."""
    depth = 0
    for i in range(end - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses: {text!r}")


@dataclass
class Query:
    """One PromQL expression taken apart: its series names (with their positions), their
    selectors' matchers, and its groupings with the span of what each one aggregates."""

    expr: str
    series: list[tuple[str, int]] = field(default_factory=list)
    matchers: dict[int, list[tuple[str, str, str]]] = field(default_factory=dict)  # by position
    groupings: list[tuple[str, list[str], tuple[int, int]]] = field(default_factory=list)

    def series_in(self, span: tuple[int, int]) -> list[str]:
        return [name for name, at in self.series if span[0] <= at < span[1]]


def parse(expr: str) -> Query:
    """Take `expr` apart; ValueError for a form the regular expressions do not cover."""
    query = Query(expr)
    for match in SELECTOR.finditer(expr):
        body = match.group(2)
        matchers = [(m.group(1), m.group(2), m.group(3)) for m in MATCHER.finditer(body)]
        if "".join(m.group(0) for m in MATCHER.finditer(body)) != body:
            raise ValueError(f"selector not understood: {match.group(0)!r}")
        if not match.group(1):
            raise ValueError(f"a selector without a metric name: {match.group(0)!r}")
        query.matchers[match.start(1)] = matchers
    bare = _blank(_blank(expr, BRACES), RANGE)
    if '"' in bare:
        raise ValueError(f"a string outside a selector is not understood: {expr!r}")
    for match in GROUPING.finditer(bare):
        after = match.end() + len(bare[match.end() :]) - len(bare[match.end() :].lstrip())
        if bare[after : after + 1] == "(":  # prefix form: sum by (x) (…)
            span = (after, _group_end(bare, after))
        else:  # postfix form: sum(…) by (x)
            before = len(bare[: match.start()].rstrip())
            span = (_group_start(bare, before), before)
        labels = [label.strip() for label in match.group(2).split(",") if label.strip()]
        query.groupings.append((match.group(1), labels, span))
    for match in AGGREGATION.finditer(bare):  # sum(…) with no grouping: sum by () (…)
        start = match.end() - 1
        end = _group_end(bare, start)
        if not re.match(r"\s*(by|without)\b", bare[end:]):
            query.groupings.append(("by", [], (start, end)))
    bare = _blank(bare, GROUPING)
    for match in IDENT.finditer(bare):
        following = bare[match.end() :].lstrip()[:1]
        if following != "(" and match.group(0) not in KEYWORDS:
            query.series.append((match.group(0), match.start()))
    return query


def _dedup_spans(query: Query) -> list[tuple[int, int]]:
    """The arguments of `max without (instance)`: where the replicas' copies collapse."""
    spans = []
    for kind, _, span in query.groupings:
        head = query.expr[: span[0]].rstrip()
        if kind == "without" and re.search(r"\bmax\s+without\s*\(\s*instance\s*\)$", head):
            spans.append(span)
    return spans


def problems(expr: str, legend: str = "") -> list[str]:
    """Why `expr` (with its legend format) does not fit the metric families; [] when it does."""
    try:
        query = parse(expr)
    except ValueError as exc:
        return [str(exc)]
    found: list[str] = []
    unknown = {name for name, _ in query.series if family_of(name) is None}
    found += [f"{name}: no such metric family (or series of one)" for name in sorted(unknown)]
    if not query.series:
        found.append("no metric")
    if unknown or not query.series:
        return found
    for name, at in query.series:
        matchers = query.matchers.get(at, [])
        for label, _, _ in matchers:
            if label not in labels_of(name):
                found.append(f"{name}: no label {label!r}")
        known = family_of(name)
        assert known is not None  # unknown names were turned down above
        tenant = known[0].tenant
        if tenant and TENANT_MATCHER not in matchers:
            found.append(f'{name}: carries a tenant label but ignores tenant=~"$tenant"')
        if not tenant and any(value == "$tenant" for _, _, value in matchers):
            found.append(f"{name}: filtered by $tenant but has no tenant label")
    for kind, labels, span in query.groupings:
        for name in query.series_in(span):
            for label in labels:
                if label not in labels_of(name):
                    found.append(f"{kind} ({label}): {name} has no such label")
    for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
        for name, _ in query.series:
            if label not in labels_of(name):
                found.append(f"legend {{{{{label}}}}}: {name} has no such label")
        for kind, labels, _ in query.groupings:
            if (kind == "by") != (label in labels):
                found.append(f"legend {{{{{label}}}}}: {kind} ({', '.join(labels)}) drops it")
    for function, name in RANGE_FUNCTIONS.findall(expr):
        family, suffix = family_of(name) or (None, "")
        if family is None or (family.kind is not Kind.COUNTER and not suffix):
            found.append(f"{function}({name}): only counters and histogram series have rates")
    for match in re.finditer(r"\bhistogram_quantile\s*\(", expr):
        start = match.end() - 1
        inner = parse(expr[start : _group_end(expr, start)])
        if any(not name.endswith("_bucket") for name, _ in inner.series):
            found.append("histogram_quantile over a series that is not a _bucket")
        if not any(kind == "by" and "le" in labels for kind, labels, _ in inner.groupings):
            found.append("histogram_quantile without sum by (le, …)")
    spans = _dedup_spans(query)
    for name, at in query.series:
        if not any(a <= at < b for a, b in spans):
            found.append(f"{name}: not under max without (instance) (replicas double count)")
    return found


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in _panels() for t in p["targets"]]


# the dashboard as Grafana reads it


def test_the_dashboard_is_an_importable_grafana_dashboard() -> None:
    dash = _dashboard()
    assert dash["title"] and dash["uid"] and dash["schemaVersion"] >= 36
    assert "id" not in dash or dash["id"] is None  # an import creates it
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in dash["panels"]:
        grid = panel["gridPos"]
        assert all(isinstance(grid[k], int) for k in ("x", "y", "w", "h")), panel["title"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        xs, ys = range(grid["x"], grid["x"] + grid["w"]), range(grid["y"], grid["y"] + grid["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            assert panel["panels"] == [] and panel["collapsed"] is False
            continue
        assert panel["title"] and panel["type"] in {"timeseries", "stat", "state-timeline"}
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"] and target["datasource"] == panel["datasource"]
    rows = [p["title"] for p in dash["panels"] if p["type"] == "row"]
    assert {"Throughput", "Latency", "Errors", "Cost", "Saturation"} <= set(rows)


def test_the_datasource_and_tenant_variables() -> None:
    variables = {v["name"]: v for v in _dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    tenant = variables["tenant"]
    assert tenant["type"] == "query"
    assert tenant["definition"] == "label_values(cb_executions_total, tenant)"
    assert tenant["query"]["query"] == tenant["definition"]
    # "All" must also match series without a tenant label (CB_METRICS_TENANT_LABEL=off)
    assert tenant["includeAll"] and tenant["allValue"] == ".*"
    used = {name for _, t in _targets() for name in re.findall(r"\$\{?(\w+)", t["expr"])}
    assert used <= set(variables) | GRAFANA_VARIABLES


def test_every_query_fits_the_metric_families() -> None:
    bad = {
        f"{title} / {t['refId']}": found
        for title, t in _targets()
        if (found := problems(t["expr"], t.get("legendFormat", "")))
    }
    assert bad == {}


def test_every_family_has_a_panel() -> None:
    used = set()
    for _, target in _targets():
        for name, _ in parse(target["expr"]).series:
            found = family_of(name)
            if found is not None:
                used.add(found[0].name)
    assert used == {f.name for f in FAMILIES}


@pytest.mark.parametrize(
    ("expr", "complaint"),
    [
        ("sum(max without (instance) (rate(cb_http_request_total[5m])))", "no such metric"),
        (
            "sum by (path) (max without (instance) (rate(cb_http_requests_total[5m])))",
            "has no such label",
        ),
        ('max without (instance) (rate(cb_http_requests_total{code="500"}[5m]))', "no label"),
        ("max without (instance) (rate(cb_executions_total[5m]))", "ignores tenant"),
        ("max without (instance) (rate(cb_streams_open[5m]))", "only counters"),
        ("sum(rate(cb_http_requests_total[5m]))", "double count"),
        (
            "histogram_quantile(0.9, sum by (route) (max without (instance) "
            "(rate(cb_http_request_duration_seconds_bucket[5m]))))",
            "sum by (le",
        ),
        (
            "sum(max without (instance) (rate(cb_event_store_write_seconds_bucket[5m])))"
            " by (provider)",
            "has no such label",
        ),
        ('label_replace(cb_streams_open, "a", "b", "c", "d")', "not understood"),
        ('max without (instance) ({__name__="cb_streams_open"})', "without a metric name"),
    ],
)
def test_the_checker_turns_down_what_does_not_fit(expr: str, complaint: str) -> None:
    found = problems(expr)
    assert any(complaint in p for p in found), found


def test_the_checker_turns_down_a_legend_label_the_query_drops() -> None:
    expr = "sum(max without (instance) (rate(cb_http_requests_total[5m])))"
    assert problems(expr, "{{route}}") == ["legend {{route}}: by () drops it"]
    assert problems(expr.replace("sum(", "sum by (route) ("), "{{route}}") == []


def test_the_checker_turns_down_a_renamed_family(monkeypatch: pytest.MonkeyPatch) -> None:
    """Renaming a family in domain/metric_families.py, without the dashboard, fails."""
    renamed = dict(BY_NAME)
    renamed["cb_requests_total"] = renamed.pop("cb_http_requests_total")
    monkeypatch.setitem(globals(), "BY_NAME", renamed)
    assert any("cb_http_requests_total" in p for _, t in _targets() for p in problems(t["expr"]))


# the Metrics section of docs/operations.md


def _metrics_section() -> str:
    text = OPERATIONS.read_text()
    start = text.index("\n## Metrics\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_the_operations_table_lists_exactly_the_families() -> None:
    rows = re.findall(r"^\| `([a-z_]+)` \| (\w+) \| ([^|]*) \|", _metrics_section(), re.M)
    listed = {name: (kind, re.findall(r"`(\w+)`", labels)) for name, kind, labels in rows}
    expected = {
        f.name: (f.kind.value, [*f.labels, *(["tenant"] if f.tenant else [])]) for f in FAMILIES
    }
    assert listed == expected
    assert len(rows) == len(FAMILIES)


def test_the_operations_scrape_configs_parse() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", _metrics_section(), re.S)
    assert blocks
    for block in blocks:
        jobs = yaml.safe_load(block)["scrape_configs"]
        assert all(job["metrics_path"] == "/metrics" for job in jobs)
    assert "127.0.0.1:8000" in blocks[0]
