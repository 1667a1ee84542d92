"""The analytics API over a known mix of executions: every figure equals the one computed
by hand from those executions' own records; other tenants see none of it; CSV; bad input;
a rebuild (the CLI, beside the live server) answers the same; analysts' SQL roles."""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from domain import histogram
from tests.support.client import ApiClient, Tenant
from tests.support.sse import iter_events, read_events, stream

ROOT = Path(__file__).resolve().parents[2]


def _tag(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def _mix(gateway: ApiClient, tenant: Tenant) -> list[str]:
    """Completed (whole, streamed, retried, with tools), failed two ways, cancelled."""
    emu = gateway.cluster.emulator
    helper = gateway.new_agent(tenant, model="gpt-4o-mini")
    tools = gateway.new_agent(tenant, name="Calc", model="gpt-4o-mini",
                              tools=["mortgage_calculator"])  # fmt: skip
    ids = []
    plain = _tag("plain")
    emu.script(plain, content="fine", prompt_tokens=11, completion_tokens=7)
    ids.append(gateway.execute(tenant, helper["id"], plain).json()["execution_id"])
    streamed = _tag("streamed")
    emu.script(streamed, chunks=["a ", "streamed ", "answer"], prompt_tokens=5,
               completion_tokens=3)  # fmt: skip
    with stream(gateway, tenant, helper["id"], streamed) as reply:
        ids.append(read_events(reply)[-1]["data"]["execution_id"])
    retried = _tag("retried")
    emu.script(retried, content="second try", prompt_tokens=9, completion_tokens=4)
    emu.script(retried, status=429, headers={"retry-after": "0"}, times=1)
    ids.append(gateway.execute(tenant, helper["id"], retried).json()["execution_id"])
    tooled = _tag("tooled")
    emu.script(tooled, content="from the tools", with_tool_results=True)
    good = {"price": 300000, "down_payment": 60000, "annual_rate_percent": 6.0, "term_years": 30}
    emu.script(tooled, times=1, tool_calls=[
        {"name": "mortgage_calculator", "arguments": good},
        {"name": "mortgage_calculator", "arguments": {"price": "lots"}},
    ])  # fmt: skip
    ids.append(gateway.execute(tenant, tools["id"], tooled).json()["execution_id"])
    refused = _tag("refused")
    emu.script(refused, status=400, error_body={"error": {"message": "bad", "type": "x"}})
    failed = gateway.execute(tenant, helper["id"], refused)
    assert failed.status_code >= 400
    ids.append(failed.json()["error"]["execution_id"])
    unknown = gateway.http.post(
        "/v1/chat/completions", headers=tenant.headers(),
        json={"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]},
    )  # fmt: skip
    assert unknown.status_code == 404, unknown.text
    ids.append(unknown.headers["x-cb-execution-id"])
    cut = _tag("cut")
    emu.script(cut, chunks=[f"w{i} " for i in range(40)], chunk_delay=0.1)
    with stream(gateway, tenant, helper["id"], cut) as reply:
        for event in iter_events(reply):
            if event.get("event") == "content_chunk":
                ids.append(event["data"]["execution_id"])
                break
    return ids


def _records(gateway: ApiClient, tenant: Tenant, ids: list[str]) -> list[dict[str, Any]]:
    return [gateway.ended_execution(tenant, execution_id) for execution_id in ids]


def _lower(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def _within(estimate: float | None, exact: float) -> bool:
    return estimate is not None and abs(estimate - exact) <= exact * histogram.RELATIVE_ERROR


def _retries_fallbacks(attempts: list[dict[str, Any]]) -> tuple[int, int]:
    retries = fallbacks = 0
    for before, after in itertools.pairwise(attempts):
        if before["error"] is not None:
            retries += after["model"] == before["model"]
            fallbacks += after["model"] != before["model"]
    return retries, fallbacks


def _expected(records: list[dict[str, Any]], tool_calls: int, tool_failures: int) -> dict:
    """The figures of one group, computed from the executions' history records."""
    statuses = [r["status"] for r in records]
    succeeded = statuses.count("completed")
    cost = sum(r["usage"]["cost_usd"] for r in records)
    tokens = sum(r["usage"]["prompt_tokens"] + r["usage"]["completion_tokens"] for r in records)
    attempts = [(r.get("metadata") or {}).get("attempt_log") or [] for r in records]
    errors: dict[str, int] = {}
    for r in records:
        if r["status"] == "failed":
            errors[r["error"]["type"]] = errors.get(r["error"]["type"], 0) + 1
    return {
        "executions": len(records),
        "succeeded": succeeded,
        "failed": statuses.count("failed"),
        "cancelled": statuses.count("cancelled"),
        "streamed": sum(bool(r["stream"]) for r in records),
        "success_rate": round(succeeded / len(records), 6),
        "prompt_tokens": sum(r["usage"]["prompt_tokens"] for r in records),
        "completion_tokens": sum(r["usage"]["completion_tokens"] for r in records),
        "total_tokens": tokens,
        "cost_usd": pytest.approx(cost, abs=1e-9),
        "cost_per_success_usd": pytest.approx(cost / succeeded, abs=1e-9),
        "tokens_per_success": pytest.approx(tokens / succeeded, abs=1e-3),
        "error_types": errors,
        "retries": sum(_retries_fallbacks(a)[0] for a in attempts),
        "fallbacks": sum(_retries_fallbacks(a)[1] for a in attempts),
        "tool_calls": tool_calls,
        "tool_failures": tool_failures,
    }


def _usage(gateway: ApiClient, tenant: Tenant, **query: str) -> httpx.Response:
    now = time.time()
    params = {"from": str(now - 3600), "to": str(now + 60), **query}
    reply = gateway.http.get("/api/v1/analytics/usage", params=params, headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply


def test_usage_equals_the_figures_by_hand_and_stays_the_tenants_own(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant("A"), gateway.new_tenant("B")
    records = _records(gateway, tenant, _mix(gateway, tenant))
    assert [r["status"] for r in records].count("cancelled") == 1
    body = _usage(gateway, tenant, group_by="day").json()
    [row] = body["rows"]
    assert body["group_by"] == ["day"] and row["day"] == time.strftime("%Y-%m-%d", time.gmtime())
    expected = _expected(records, tool_calls=2, tool_failures=1)
    assert {k: row[k] for k in expected} == expected
    assert expected["retries"] == 1 and len(expected["error_types"]) == 2
    durations = [r["duration_ms"] for r in records]
    assert row["duration_ms"]["mean"] == pytest.approx(sum(durations) / len(durations), abs=1e-3)
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        assert _within(row["duration_ms"][label], _lower(durations, q)), label
    ttfts = [r["metadata"]["ttft_ms"] for r in records if r["stream"]]
    assert len(ttfts) == 2 and all(t > 0 for t in ttfts)
    assert _within(row["ttft_ms"]["p50"], _lower(ttfts, 0.5))
    assert row["ttft_ms"]["mean"] == pytest.approx(sum(ttfts) / 2, abs=1e-3)

    by_status = {r["status"]: r["executions"] for r in _usage(
        gateway, tenant, group_by="status").json()["rows"]}  # fmt: skip
    assert by_status == {"completed": 4, "failed": 2, "cancelled": 1}
    by_kind = {r["kind"]: r["executions"] for r in _usage(
        gateway, tenant, group_by="kind").json()["rows"]}  # fmt: skip
    assert by_kind == {"agent_execution": 6, "chat_completion": 1}
    calc = next(r for r in records if (r.get("metadata") or {}).get("tools_offered"))
    [agent_row] = _usage(gateway, tenant, group_by="agent", agent_id=calc["agent_id"]).json()[
        "rows"
    ]
    assert agent_row["agent_id"] == calc["agent_id"] and agent_row["tool_calls"] == 2
    assert agent_row["tool_failures"] == 1

    now = time.time()
    window = {"from": str(now - 3600), "to": str(now + 60)}
    errors = gateway.http.get("/api/v1/analytics/errors", params=window,
                              headers=tenant.headers()).json()["errors"]  # fmt: skip
    failed = {r["execution_id"]: r for r in records if r["status"] == "failed"}
    assert sorted(e["error_type"] for e in errors) == sorted(
        r["error"]["type"] for r in failed.values())  # fmt: skip
    for pattern in errors:
        [execution_id] = pattern["execution_ids"]
        assert failed[execution_id]["error"]["type"] == pattern["error_type"]
        assert pattern["count"] == 1 and pattern["first_seen"] == pattern["last_seen"]
    models = gateway.http.get("/api/v1/analytics/models", params=window,
                              headers=tenant.headers()).json()["models"]  # fmt: skip
    routed = [r for r in records if r["model_resolved"]]
    assert [(m["model"], m["executions"]) for m in models] == [("gpt-4o-mini", len(routed))]

    assert _usage(gateway, other, group_by="agent").json()["rows"] == []
    assert gateway.http.get("/api/v1/analytics/errors", params=window,
                            headers=other.headers()).json()["errors"] == []  # fmt: skip


def test_csv_bad_input_and_the_scope(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("csv")
    gateway.cluster.emulator.script(tag, content="ok", prompt_tokens=3, completion_tokens=2)
    assert gateway.execute(tenant, agent["id"], tag).status_code == 200
    as_csv = _usage(gateway, tenant, group_by="model,status", format="csv")
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    [row] = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert (row["model"], row["status"], row["executions"]) == ("gpt-4o-mini", "completed", "1")
    assert row["prompt_tokens"] == "3" and "duration_ms.p50" in row
    by_accept = gateway.http.get(
        "/api/v1/analytics/models", headers={**tenant.headers(), "Accept": "text/csv"}
    )
    assert by_accept.text.splitlines()[0].startswith("model,provider,executions")
    for params, param in (
        ({"group_by": "colour"}, "group_by"),
        ({"from": "yesterday-ish"}, "from"),
        ({"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"}, "from"),
    ):
        bad = gateway.http.get("/api/v1/analytics/usage", params=params, headers=tenant.headers())
        assert bad.status_code == 400, bad.text
        error = bad.json()["error"]
        assert error["type"] == "invalid_request" and error["details"]["param"] == param
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/api-keys", headers=gateway.admin,
        json={"scopes": ["agents:execute"]},
    )  # fmt: skip
    narrow = issued.json()["api_key"]
    denied = gateway.http.get("/api/v1/analytics/usage", headers=tenant.headers(narrow))
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_denied"


def _cli(gateway: ApiClient, *args: str) -> subprocess.CompletedProcess[str]:
    settings = gateway.settings
    env = {
        **os.environ,
        "CB_INSTANCE": settings.instance,
        "CB_DATA_DIR": settings.data_dir,
        "CB_DATABASE_URL": settings.database_url or "",
        "CB_ENCRYPT_PAYLOADS": "true" if settings.encrypt_payloads else "",
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_rebuild_beside_the_live_server_answers_the_same(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    _records(gateway, tenant, _mix(gateway, tenant))
    live = _usage(gateway, tenant, group_by="hour,agent,model,status").json()["rows"]
    done = _cli(gateway, "projections", "rebuild", "metrics")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "metrics: rebuilt from" in done.stdout
    assert _usage(gateway, tenant, group_by="hour,agent,model,status").json()["rows"] == live
    lag = gateway.http.get("/api/v1/admin/projections", headers=gateway.admin).json()
    names = {p["name"]: p for p in lag["projections"]}
    assert set(names) == {"read_models", "metrics"}
    assert all(p["lag_events"] >= 0 and p["head"] >= p["position"] for p in names.values())
    unknown = _cli(gateway, "projections", "rebuild", "nonsense")
    assert unknown.returncode == 2 and "unknown projection" in unknown.stdout


@pytest.mark.parametrize("gateway", ["postgres"], indirect=True)
def test_an_analyst_role_reads_its_tenants_rows_only(gateway: ApiClient) -> None:
    mine, theirs = gateway.new_tenant("Mine"), gateway.new_tenant("Theirs")
    for tenant in (mine, theirs):
        agent = gateway.new_agent(tenant, model="gpt-4o-mini")
        tag = _tag("sql")
        gateway.cluster.emulator.script(tag, content="ok", prompt_tokens=4, completion_tokens=2)
        assert gateway.execute(tenant, agent["id"], tag).status_code == 200
    _usage(gateway, mine)  # the projection has folded both executions
    name = f"analyst_{uuid.uuid4().hex[:10]}"
    made = _cli(gateway, "analyst", "create-role", "--tenant", mine.id, "--name", name)
    assert made.returncode == 0, made.stdout + made.stderr
    url = made.stdout.strip().splitlines()[-1]
    assert url.startswith(f"postgresql://{name}:")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            tenants = {row[0] for row in conn.execute(
                "SELECT tenant_id FROM analytics.usage_daily").fetchall()}  # fmt: skip
            assert tenants == {mine.id}
            facts = conn.execute("SELECT tenant_id, prompt_tokens FROM analytics.execution_facts")
            assert [tuple(r) for r in facts.fetchall()] == [(mine.id, 4)]
            for forbidden in (
                "SELECT * FROM public.api_keys",
                "SELECT * FROM public.circuitbreaker_events",
                "SELECT * FROM public.executions",
                "SELECT * FROM analytics.projection_tracking",
                "INSERT INTO analytics.usage_daily (tenant_id) VALUES ('x')",
                "DELETE FROM analytics.execution_facts",
            ):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(forbidden)
            comment = conn.execute(
                "SELECT obj_description('analytics.usage_daily'::regclass)"
            ).fetchone()[0]
            assert "UTC day" in comment
    finally:
        dropped = _cli(gateway, "analyst", "drop-role", "--name", name)
        assert dropped.returncode == 0, dropped.stdout + dropped.stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5)
    refused = _cli(gateway, "analyst", "create-role", "--tenant", "not-a-uuid", "--name", name)
    assert refused.returncode == 2


def test_history_shows_the_time_to_first_content(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="gpt-4o-mini")
    tag = _tag("ttft")
    gateway.cluster.emulator.script(tag, chunks=["x", "y"], delay=0.2)
    with stream(gateway, tenant, agent["id"], tag) as reply:
        final = read_events(reply)[-1]["data"]
    record = gateway.ended_execution(tenant, final["execution_id"])
    assert record["metadata"]["ttft_ms"] >= 200 and final["metadata"]["ttft_ms"] >= 200
    [attempt] = record["metadata"]["attempt_log"]
    assert attempt["provider"] == "openai" and attempt["ttft_ms"] >= 200
    assert json.dumps(record).count("ttft_ms") >= 2
