"""`GET /metrics`: the deployment's Prometheus metrics, exact across two ingress replicas and
a tenant actor's restart."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import ray

from actors import metrics, names
from actors.names import NAMESPACE
from tests.support.client import SQLITE_ONLY, ApiClient

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def scrape(gateway: ApiClient) -> list[tuple[str, dict[str, str], float]]:
    reply = gateway.http.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = []
    for line in reply.text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        labels = dict(LABEL.findall(match.group(2) or ""))
        samples.append((match.group(1), labels, float(match.group(3))))
    return samples


def total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        v for n, got, v in samples if n == name and all(got.get(k) == w for k, w in labels.items())
    )


def wait_for(gateway: ApiClient, ready: Callable[[list], bool], timeout_s: float = 15.0) -> list:
    """Scrape until `ready(samples)` (a quiet process reports every few seconds)."""
    deadline = time.monotonic() + timeout_s
    while True:
        samples = scrape(gateway)
        if ready(samples):
            return samples
        assert time.monotonic() < deadline, "the metrics never showed what was done"
        time.sleep(0.3)


@SQLITE_ONLY
def test_metrics_count_exactly_across_replicas_and_a_tenant_actor_restart(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant("Metered")
    agent = gateway.new_agent(tenant)
    route = "/api/v1/agents/{agent_id}/execute"
    before = scrape(gateway)
    emulator = gateway.cluster.emulator
    ok, bad = f"metrics-ok-{uuid.uuid4().hex[:8]}", f"metrics-bad-{uuid.uuid4().hex[:8]}"
    emulator.script(ok, prompt_tokens=11, completion_tokens=7)
    emulator.script(bad, status=400, error_body={"error": {"message": "no", "type": "x"}})
    results = [gateway.execute(tenant, agent["id"], ok) for _ in range(6)]
    failures = [gateway.execute(tenant, agent["id"], bad) for _ in range(2)]
    assert [r.status_code for r in results] == [200] * 6
    assert all(r.status_code == 400 for r in failures), [r.text for r in failures]
    models = {r.json()["metadata"]["model_resolved"] for r in results}
    assert len(models) == 1
    model = models.pop()
    mine = {"tenant": tenant.id}

    def counted(completed: int) -> Callable[[list], bool]:
        return lambda s: (
            total(s, "cb_executions_total", status="completed", **mine) == completed
            and total(s, "cb_executions_total", status="failed", **mine) == 2
        )

    samples = wait_for(gateway, counted(6))
    # one more report from every process, quiet ones too: nothing late, nothing twice
    time.sleep(metrics.QUIET_EVERY * gateway.settings.metrics_report_s + 0.5)
    samples = scrape(gateway)
    assert counted(6)(samples)
    tokens = "gen_ai_client_token_usage_sum"
    assert total(samples, tokens, gen_ai_token_type="input", **mine) == 66
    assert total(samples, tokens, gen_ai_token_type="output", **mine) == 42
    assert total(samples, "gen_ai_client_token_usage_count", gen_ai_token_type="input", **mine) == 6
    assert total(samples, "gen_ai_client_operation_duration_seconds_count",
                 gen_ai_request_model=model, **mine) == 8  # fmt: skip
    assert total(samples, "gen_ai_client_operation_duration_seconds_count",
                 error_type="provider_rejected_request", **mine) == 2  # fmt: skip
    cost = sum(r.json()["usage"]["cost_usd"] for r in results)
    assert abs(total(samples, "cb_cost_usd_total", model=model, **mine) - cost) < 1e-9
    assert total(samples, "cb_refusals_total", type="provider_rejected_request",
                 category="client", **mine) == 2  # fmt: skip
    # the route's counts, exact: this test's requests alone went there meanwhile
    for status, expected in (("200", 6), ("400", 2)):
        grew = total(samples, "cb_http_requests_total", route=route, status=status) - total(
            before, "cb_http_requests_total", route=route, status=status
        )
        assert grew == expected, (status, grew)
    assert total(samples, "cb_tenant_actors_alive") >= 1
    assert total(samples, "cb_ingress_limit") > 0
    assert total(samples, "cb_event_store_batch_events_count") > 0
    assert {labels.get("projection") for n, labels, _ in samples
            if n == "cb_projection_lag_seconds"} >= {"read_models"}  # fmt: skip

    # the tenant's actor dies; its counts stay, and the next incarnation adds to them
    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
    assert counted(6)(scrape(gateway))
    again = [gateway.execute(tenant, agent["id"], ok) for _ in range(3)]
    assert [r.status_code for r in again] == [200] * 3
    samples = wait_for(gateway, counted(9))
    assert total(samples, tokens, gen_ai_token_type="input", **mine) == 99


@SQLITE_ONLY
def test_a_stream_counts_while_open_and_records_its_first_chunk(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant("Streamed")
    agent = gateway.new_agent(tenant)
    tag = f"metrics-stream-{uuid.uuid4().hex[:8]}"
    gateway.cluster.emulator.script(
        tag, chunks=["a", "b", "c", "d"], chunk_delay=0.7, prompt_tokens=5, completion_tokens=4
    )
    mine = {"tenant": tenant.id}
    path = f"/api/v1/agents/{agent['id']}/execute/stream"
    with gateway.http.stream("POST", path, json={"prompt": tag}, headers=tenant.headers()) as sse:
        assert sse.status_code == 200
        lines = sse.iter_lines()
        while "content_chunk" not in next(lines):
            pass
        wait_for(gateway, lambda s: total(s, "cb_streams_open") >= 1)
        rest = "\n".join(lines)
    assert "execution_complete" in rest
    samples = wait_for(
        gateway,
        lambda s: (
            total(s, "cb_executions_total", status="completed", **mine) == 1
            and total(s, "gen_ai_client_operation_time_to_first_chunk_seconds_count", **mine) == 1
        ),
    )
    assert total(samples, "gen_ai_client_token_usage_sum", gen_ai_token_type="output", **mine) == 4
    first_chunk = total(samples, "gen_ai_client_operation_time_to_first_chunk_seconds_sum", **mine)
    assert 0 < first_chunk < 5
