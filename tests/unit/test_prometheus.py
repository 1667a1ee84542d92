"""The metric recorder, the cluster's totals and their Prometheus text (in-process)."""

from __future__ import annotations

import re

import pytest

from domain.metric_families import BY_NAME, FAMILIES, TOKEN_BUCKETS, Kind
from domain.prometheus import Recorder, Totals, tenant_value

LINE = re.compile(r"^([a-z_:][a-z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf)$")


def parse(text: str) -> dict[str, float]:
    """Sample lines as `name{labels}` → value; every line must be a comment or a sample."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = LINE.match(line)
        assert match, line
        out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return out


def test_counters_add_up_across_processes_and_restarts() -> None:
    totals = Totals()
    first, second = Recorder(), Recorder()
    for _ in range(3):
        first.inc("cb_executions_total", ("agent", "completed"), tenant="t1")
    second.inc("cb_executions_total", ("agent", "completed"), tenant="t1")
    totals.add("tenant:a", first.take(), now=0.0)
    totals.add("tenant:b", second.take(), now=0.0)
    # the first process restarts: a new recorder, counting from zero again
    restarted = Recorder()
    restarted.inc("cb_executions_total", ("agent", "completed"), tenant="t1")
    totals.add("tenant:a2", restarted.take(), now=1.0)
    samples = parse(totals.render(now=1.0))
    assert samples['cb_executions_total{kind="agent",status="completed",tenant="t1"}'] == 5


def test_take_hands_over_deltas_once() -> None:
    rec = Recorder()
    rec.inc("cb_http_requests_total", ("/x", "GET", "200"))
    assert rec.take().counters == {("cb_http_requests_total", ("/x", "GET", "200")): 1.0}
    assert rec.take().empty()


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    rec, totals = Recorder(), Totals()
    labels = ("chat", "openai", "gpt-4o-mini", "gpt-4o-mini", "input")
    for tokens in (3, 10, 10, 5000):
        rec.observe("gen_ai_client_token_usage", tokens, labels, tenant="t")
    totals.add("p", rec.take(), now=0.0)
    samples = parse(totals.render(now=0.0))
    base = ('gen_ai_operation_name="chat",gen_ai_provider_name="openai",'
            'gen_ai_request_model="gpt-4o-mini",gen_ai_response_model="gpt-4o-mini",'
            'gen_ai_token_type="input",tenant="t"')  # fmt: skip
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="1"}}'] == 0
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="4"}}'] == 1
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="16"}}'] == 3
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="4096"}}'] == 3
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="16384"}}'] == 4
    assert samples[f'gen_ai_client_token_usage_bucket{{{base},le="+Inf"}}'] == 4
    assert samples[f"gen_ai_client_token_usage_sum{{{base}}}"] == 5023
    assert samples[f"gen_ai_client_token_usage_count{{{base}}}"] == 4
    assert len(TOKEN_BUCKETS) == 14 and TOKEN_BUCKETS[-1] == 67108864


def test_gauges_sum_over_live_processes_and_vanish_when_stale() -> None:
    totals = Totals(stale_s=5.0)
    for source in ("tenant:a", "tenant:b"):
        rec = Recorder()
        rec.set("cb_tenant_actors_alive", 1)
        totals.add(source, rec.take(), now=0.0)
    assert parse(totals.render(now=1.0))["cb_tenant_actors_alive"] == 2
    rec = Recorder()
    rec.set("cb_tenant_actors_alive", 1)
    totals.add("tenant:a", rec.take(), now=4.0)
    assert parse(totals.render(now=6.0))["cb_tenant_actors_alive"] == 1  # b stopped at 0
    totals.forget("tenant:a")
    assert "cb_tenant_actors_alive" not in parse(totals.render(now=6.0))


def test_gauges_that_are_not_summed_take_the_highest() -> None:
    totals = Totals()
    for source, value in (("p1", 2), ("p2", 0)):
        rec = Recorder()
        rec.set("cb_provider_breaker_state", value, ("openai",))
        totals.add(source, rec.take(), now=0.0)
    assert parse(totals.render(now=0.0))['cb_provider_breaker_state{provider="openai"}'] == 2


def test_collectors_set_gauges_at_each_take() -> None:
    rec, seen = Recorder(), [0]

    def collect(r: Recorder) -> None:
        seen[0] += 1
        r.set("cb_streams_open", seen[0])

    rec.collectors["x"] = collect
    assert rec.take().gauges == {("cb_streams_open", ()): 1.0}
    assert rec.take().gauges == {("cb_streams_open", ()): 2.0}


@pytest.mark.parametrize(
    ("mode", "label"), [("label", "t-1"), ("hashed", tenant_value("t-1", "hashed")), ("off", None)]
)
def test_tenant_label_modes(mode: str, label: str | None) -> None:
    rec, totals = Recorder(tenant_mode=mode), Totals()
    rec.inc("cb_cost_usd_total", ("gpt-4o",), 0.25, tenant="t-1")
    totals.add("p", rec.take(), now=0.0)
    samples = parse(totals.render(now=0.0))
    key = 'cb_cost_usd_total{model="gpt-4o"' + (f',tenant="{label}"' if label else "") + "}"
    assert samples == {key: 0.25}
    if mode == "hashed":
        assert label != "t-1" and len(label or "") == 12


def test_label_values_are_escaped() -> None:
    rec, totals = Recorder(), Totals()
    rec.inc("cb_http_requests_total", ('/a"b\\c\nd', "GET", "200"))
    totals.add("p", rec.take(), now=0.0)
    assert 'route="/a\\"b\\\\c\\nd"' in totals.render(now=0.0)


def test_every_family_renders_help_and_type() -> None:
    text = Totals().render(now=0.0)
    for family in FAMILIES:
        assert f"# TYPE {family.name} {family.kind.value}" in text
        assert f"# HELP {family.name} " in text
        if family.kind is Kind.COUNTER:
            assert family.name.endswith("_total")
        if family.kind is Kind.HISTOGRAM:
            assert family.buckets == tuple(sorted(family.buckets))
    assert BY_NAME["gen_ai_client_operation_duration_seconds"].tenant
