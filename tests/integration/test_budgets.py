"""Budgets: a hard one refuses exactly at its limit on every door and across replicas, a soft
one alerts once per threshold (audit trail and live feed), spending survives a restart of the
tenant's actor, and one tenant never sees another's."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import ray

from actors import names
from actors.names import NAMESPACE
from domain.llm import estimate_prompt_tokens
from domain.prompting import build_messages
from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.cluster import config_for_tests
from tests.support.sse import iter_events, read_events

MODEL = "speedy-a"
SYSTEM = "Be brief."
MAX_TOKENS = 100
SHAPE = {"scope", "limit_usd", "period", "enforcement", "thresholds", "spent_usd",
         "reserved_usd", "remaining_usd", "period_start", "period_end"}  # fmt: skip
REFUSAL = {"scope", "limit_usd", "period", "spent_usd", "reserved_usd", "period_end"}


def _tag(kind: str) -> str:
    return f"budget-{kind}-{uuid.uuid4().hex[:8]}"


def _priced(gateway: ApiClient, tag: str) -> float:
    """Script the emulator to answer `tag` with the tokens an execution of `_agent` holds at
    admission (its prompt estimate, `MAX_TOKENS`): what each such execution costs."""
    prompt_tokens = estimate_prompt_tokens(build_messages({"system_prompt": SYSTEM}, tag, None))
    gateway.cluster.emulator.script(tag, prompt_tokens=prompt_tokens, completion_tokens=MAX_TOKENS)
    price = config_for_tests()["models"][MODEL]
    cost = (
        prompt_tokens * price["input_price_per_mtok"] + MAX_TOKENS * price["output_price_per_mtok"]
    )
    return round(cost / 1_000_000, 9)


def _agent(gateway: ApiClient, tenant: Tenant, name: str = "Spender") -> str:
    return gateway.new_agent(
        tenant, name=name, model=MODEL, system_prompt=SYSTEM,
        parameters={"max_tokens": MAX_TOKENS},
    )["id"]  # fmt: skip


def _put(gateway: ApiClient, tenant: Tenant, scope: str, **body: Any) -> httpx.Response:
    return gateway.http.put(f"/api/v1/budgets/{scope}", json=body, headers=tenant.headers())


def _get(gateway: ApiClient, tenant: Tenant, scope: str) -> httpx.Response:
    return gateway.http.get(f"/api/v1/budgets/{scope}", headers=tenant.headers())


def _executions(gateway: ApiClient, tenant: Tenant) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/executions", headers=tenant.headers())
    return reply.json()["executions"]


def _trail(gateway: ApiClient, tenant: Tenant, kind: str) -> list[dict[str, Any]]:
    reply = gateway.http.get("/api/v1/audit", params={"kind": kind}, headers=tenant.headers())
    assert reply.status_code == 200, reply.text
    return reply.json()["entries"]


def _wait_for(gateway: ApiClient, tenant: Tenant, kind: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while not (found := _trail(gateway, tenant, kind)):
        assert time.monotonic() < deadline, f"no {kind} in the trail"
        time.sleep(0.1)
    return found


def _period_end(period: str) -> str:
    now = datetime.now(UTC)
    if period == "day":
        end = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    else:
        end = now.replace(year=now.year + now.month // 12, month=now.month % 12 + 1, day=1,
                          hour=0, minute=0, second=0, microsecond=0)  # fmt: skip
    return end.isoformat().replace("+00:00", "Z")


def _chat(gateway: ApiClient, tenant: Tenant, model: str, tag: str, stream: bool) -> Any:
    body = {"model": model, "messages": [{"role": "user", "content": tag}],
            "max_tokens": MAX_TOKENS, "stream": stream}  # fmt: skip
    return gateway.http.post("/v1/chat/completions", json=body, headers=tenant.headers())


def _feed(
    gateway: ApiClient, tenant: Tenant, events: int, heartbeats: int = 0, **headers: str
) -> tuple[list[dict[str, Any]], int]:
    """Read the tenant's budget feed until `events` events and `heartbeats` comments came;
    what came (a comment opens the feed, so it counts as one)."""
    got: list[dict[str, Any]] = []
    beats = 0
    with gateway.http.stream(
        "GET", "/api/v1/budgets/events", params={"heartbeat_s": 0.5},
        headers={**tenant.headers(), **headers},
    ) as reply:  # fmt: skip
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        deadline = time.monotonic() + 30
        for event in iter_events(reply):
            if event["event"] == "heartbeat":
                beats += 1
            else:
                got.append(event)
            if (len(got) >= events and beats >= heartbeats) or time.monotonic() > deadline:
                break
    return got, beats


def test_a_hard_budget_refuses_exactly_at_its_limit_on_every_door(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant(), gateway.new_tenant()
    agent = _agent(gateway, tenant)
    tag = _tag("hard")
    cost = _priced(gateway, tag)
    limit = round(5.5 * cost, 9)
    put = _put(gateway, tenant, "tenant", limit_usd=limit, period="day")
    assert put.status_code == 200, put.text
    assert put.json() == {
        "scope": "tenant", "limit_usd": limit, "period": "day", "enforcement": "hard",
        "thresholds": [0.5, 0.8, 1.0], "spent_usd": 0.0, "reserved_usd": 0.0,
        "remaining_usd": limit, "period_start": put.json()["period_start"],
        "period_end": _period_end("day"),
    }  # fmt: skip

    def one(_: int) -> httpx.Response:  # a client of its own: replies land on both replicas
        with httpx.Client(base_url=gateway.http.base_url, timeout=60) as client:
            return client.post(f"/api/v1/agents/{agent}/execute", json={"prompt": tag},
                               headers=tenant.headers())  # fmt: skip

    with ThreadPoolExecutor(20) as pool:
        replies = list(pool.map(one, range(20)))
    ok = [r for r in replies if r.status_code == 200]
    refused = [r for r in replies if r.status_code == 402]
    assert (len(ok), len(refused)) == (5, 15), [r.status_code for r in replies]
    assert {r.json()["usage"]["cost_usd"] for r in ok} == {cost}
    error = refused[0].json()["error"]
    assert error["type"] == "budget_exceeded" and "execution_id" not in error
    details = error["details"]
    assert set(details) == REFUSAL and details["scope"] == "tenant"
    assert (details["limit_usd"], details["period"]) == (limit, "day")
    assert details["period_end"] == _period_end("day")
    for reply in refused:  # each was refused because it did not fit beside spent and held
        seen = reply.json()["error"]["details"]
        assert seen["spent_usd"] + seen["reserved_usd"] + cost > limit

    recorded = _executions(gateway, tenant)  # a refusal records no execution
    assert len(recorded) == 5 and {e["status"] for e in recorded} == {"completed"}
    assert sum(e["usage"]["cost_usd"] for e in recorded) == pytest.approx(5 * cost, abs=1e-9)
    status = _get(gateway, tenant, "tenant").json()
    assert status["spent_usd"] == pytest.approx(5 * cost, abs=1e-9)
    assert status["reserved_usd"] == 0
    assert status["remaining_usd"] == pytest.approx(limit - 5 * cost, abs=1e-9)

    # every door refuses before anything starts: 402 as JSON, never a stream
    streamed = gateway.http.post(f"/api/v1/agents/{agent}/execute/stream",
                                 json={"prompt": tag}, headers=tenant.headers())  # fmt: skip
    assert streamed.status_code == 402, streamed.text
    assert streamed.headers["content-type"].startswith("application/json")
    assert streamed.json()["error"]["details"]["scope"] == "tenant"
    for stream in (False, True):
        chat = _chat(gateway, tenant, MODEL, tag, stream)
        assert chat.status_code == 402, chat.text
        assert chat.headers["content-type"].startswith("application/json")
        assert chat.json()["error"]["code"] == "budget_exceeded"  # in OpenAI's shape
        assert set(chat.json()["error"]) == {"message", "type", "param", "code"}
    assert len(_executions(gateway, tenant)) == 5
    assert gateway.execute(other, _agent(gateway, other), tag).status_code == 200


@SQLITE_ONLY
def test_streams_under_a_hard_budget_are_held_and_charged_like_whole_ones(
    gateway: ApiClient,
) -> None:
    tenant = gateway.new_tenant()
    agent = _agent(gateway, tenant)
    tag = _tag("streams")
    cost = _priced(gateway, tag)
    assert _put(gateway, tenant, f"agent:{agent}", limit_usd=round(2.5 * cost, 9),
                period="month").status_code == 200  # fmt: skip

    with gateway.http.stream("POST", f"/api/v1/agents/{agent}/execute/stream",
                             json={"prompt": tag}, headers=tenant.headers()) as opened:  # fmt: skip
        assert opened.status_code == 200
        events = read_events(opened)
    assert events[0]["event"] == "execution_start" and events[-1]["event"] == "execution_complete"
    chat = _chat(gateway, tenant, f"agent:{agent}", tag, stream=True)  # the agent's scope too
    assert chat.status_code == 200 and chat.text.rstrip().endswith("data: [DONE]"), chat.text
    for execution in _executions(gateway, tenant):
        assert gateway.ended_execution(tenant, execution["execution_id"])["usage"][
            "cost_usd"
        ] == pytest.approx(cost, abs=1e-9)

    refused = gateway.execute(tenant, agent, tag)
    assert refused.status_code == 402 and refused.json()["error"]["details"]["scope"] == (
        f"agent:{agent}"
    )
    status = _get(gateway, tenant, f"agent:{agent}").json()
    assert (status["spent_usd"], status["reserved_usd"]) == (pytest.approx(2 * cost), 0)
    # a chat completion for a model is no agent's: the agent's budget does not hold it
    assert _chat(gateway, tenant, MODEL, tag, stream=False).status_code == 200


def test_a_soft_budget_alerts_once_per_threshold_and_never_refuses(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = _agent(gateway, tenant)
    tag = _tag("soft")
    cost = _priced(gateway, tag)
    limit = round(3.9 * cost, 9)
    live: dict[str, Any] = {}
    watcher = threading.Thread(target=lambda: live.update(feed=_feed(gateway, tenant, 4)))
    watcher.start()  # the live feed, open before anything happens

    put = _put(gateway, tenant, "tenant", limit_usd=limit, period="month", enforcement="soft")
    assert put.status_code == 200 and put.json()["enforcement"] == "soft"
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: gateway.execute(tenant, agent, tag), range(8)))
    assert [r.status_code for r in replies] == [200] * 8  # past its limit, still served
    status = _get(gateway, tenant, "tenant").json()
    assert status["spent_usd"] == pytest.approx(8 * cost, abs=1e-9)
    assert status["remaining_usd"] == 0

    # the crossings are saved as the executions end; a later change is saved after them
    assert _put(gateway, tenant, f"agent:{agent}", limit_usd=1, period="day").status_code == 200
    crossings = _trail(gateway, tenant, "budget.threshold_crossed")
    assert sorted((e["detail"]["threshold"], e["detail"]["spent_usd"]) for e in crossings) == [
        (0.5, pytest.approx(2 * cost)),  # the 2nd execution to end crossed 50 %
        (0.8, pytest.approx(4 * cost)),  # the 4th crossed 80 % and 100 % at once
        (1.0, pytest.approx(4 * cost)),
    ]
    for entry in crossings:
        assert entry["detail"]["scope"] == "tenant" and entry["detail"]["limit_usd"] == limit
        assert entry["detail"]["period_start"] == status["period_start"]
        assert entry["actor"] is None
    assert status["period_end"] == _period_end("month")  # (unless a month ended meanwhile)
    [set_] = [e for e in _trail(gateway, tenant, "budget.set") if e["detail"]["scope"] == "tenant"]
    assert set_["detail"]["budget"]["enforcement"] == "soft" and set_["actor"].startswith("key:")

    watcher.join(timeout=60)
    events, _ = live["feed"]
    assert [e["event"] for e in events] == ["budget_set"] + ["budget_threshold_crossed"] * 3
    assert [e["data"].get("threshold") for e in events[1:]] == [0.5, 0.8, 1.0]
    ids = [e["id"] for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    # resumed after the first crossing, on whichever replica: the rest, once each
    resumed, _ = _feed(gateway, tenant, 3, **{"Last-Event-ID": str(ids[1])})
    assert [e["id"] for e in resumed] == [*ids[2:], resumed[2]["id"]]
    assert resumed[2]["event"] == "budget_set" and resumed[2]["data"]["scope"] == f"agent:{agent}"


def test_spending_survives_a_restart_of_the_tenants_actor(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent, spare = _agent(gateway, tenant), _agent(gateway, tenant, "Spare")
    tag = _tag("restart")
    cost = _priced(gateway, tag)
    scope = f"agent:{agent}"
    put = _put(gateway, tenant, scope, limit_usd=round(3.5 * cost, 9), period="day",
               thresholds=[0.5])  # fmt: skip
    assert put.status_code == 200, put.text
    for _ in range(2):
        assert gateway.execute(tenant, agent, tag).status_code == 200
    _wait_for(gateway, tenant, "budget.threshold_crossed")  # 2 of 3.5: past 50 %, recorded

    name = names.tenant_actor_name(gateway.settings, tenant.id)
    ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)

    status = _get(gateway, tenant, scope).json()  # a new actor, from the history
    assert status["spent_usd"] == pytest.approx(2 * cost, abs=1e-9)
    assert status["reserved_usd"] == 0 and status["thresholds"] == [0.5]
    assert gateway.execute(tenant, agent, tag).status_code == 200  # 3 of 3.5
    refused = gateway.execute(tenant, agent, tag)
    assert refused.status_code == 402, refused.text
    assert refused.json()["error"]["details"]["spent_usd"] == pytest.approx(3 * cost)
    assert gateway.execute(tenant, spare, tag).status_code == 200  # no budget of its own

    # 50 % was crossed before the restart; it is not crossed again after it
    assert _put(gateway, tenant, "tenant", limit_usd=100, period="month").status_code == 200
    crossings = _trail(gateway, tenant, "budget.threshold_crossed")
    assert [(e["detail"]["scope"], e["detail"]["threshold"]) for e in crossings] == [(scope, 0.5)]
    assert _get(gateway, tenant, "tenant").json()["spent_usd"] == pytest.approx(4 * cost)


@SQLITE_ONLY
def test_budgets_are_managed_by_scope_validated_and_private_to_their_tenant(
    gateway: ApiClient,
) -> None:
    a, b = gateway.new_tenant("A"), gateway.new_tenant("B")
    agent = _agent(gateway, a)
    tenant_budget = _put(gateway, a, "tenant", limit_usd=50, period="month").json()
    assert set(tenant_budget) == SHAPE and tenant_budget["period_end"] == _period_end("month")
    mine = _put(gateway, a, f"agent:{agent}", limit_usd=2.5, period="day", enforcement="soft",
                thresholds=[0.9, 0.25, 0.9, 2])  # fmt: skip
    assert mine.status_code == 200 and mine.json()["thresholds"] == [0.25, 0.9, 2.0]
    assert _get(gateway, a, f"agent:{agent}").json() == mine.json()
    listed = gateway.http.get("/api/v1/budgets", headers=a.headers()).json()["budgets"]
    assert [x["scope"] for x in listed] == [f"agent:{agent}", "tenant"]
    again = _put(gateway, a, "tenant", limit_usd=60, period="month", enforcement="soft")
    assert (again.json()["limit_usd"], again.json()["enforcement"]) == (60, "soft")

    # tenant B sees none of it
    assert gateway.http.get("/api/v1/budgets", headers=b.headers()).json() == {"budgets": []}
    assert _get(gateway, b, "tenant").status_code == 404
    assert _get(gateway, b, f"agent:{agent}").status_code == 404  # not B's agent
    assert _put(gateway, b, f"agent:{agent}", limit_usd=1, period="day").status_code == 404
    events, beats = _feed(gateway, b, 0, heartbeats=3)
    assert events == [] and beats >= 3
    a_events, _ = _feed(gateway, a, 3)
    assert [e["event"] for e in a_events] == ["budget_set"] * 3

    removed = gateway.http.delete(f"/api/v1/budgets/agent:{agent}", headers=a.headers())
    assert removed.json() == {"scope": f"agent:{agent}", "removed": True}
    assert _get(gateway, a, f"agent:{agent}").status_code == 404
    gone = gateway.http.delete(f"/api/v1/budgets/agent:{agent}", headers=a.headers())
    assert gone.status_code == 404
    [entry] = _trail(gateway, a, "budget.removed")
    assert entry["detail"] == {"scope": f"agent:{agent}"} and entry["actor"].startswith("key:")
    assert len(_trail(gateway, a, "budget.set")) == 3

    for scope, body, status, named in (
        ("team", {"limit_usd": 1, "period": "day"}, 400, "scope"),
        ("agent:", {"limit_usd": 1, "period": "day"}, 400, "scope"),
        (f"agent:{uuid.uuid4()}", {"limit_usd": 1, "period": "day"}, 404, "agent"),
        ("tenant", {"limit_usd": 0, "period": "day"}, 400, "limit_usd"),
        ("tenant", {"limit_usd": 1, "period": "week"}, 400, "period"),
        ("tenant", {"limit_usd": 1, "period": "day", "enforcement": "strict"}, 400, "enforcement"),
        ("tenant", {"limit_usd": 1, "period": "day", "thresholds": [0]}, 400, "thresholds"),
        ("tenant", {"limit_usd": 1, "period": "day", "cap": 2}, 400, "cap"),
        ("tenant", {"period": "day"}, 400, "limit_usd"),
    ):
        reply = gateway.http.put(f"/api/v1/budgets/{scope}", json=body, headers=a.headers())
        assert reply.status_code == status, (scope, body, reply.text)
        error = reply.json()["error"]
        assert error["type"] == ("invalid_request" if status == 400 else "not_found")
        assert named in error["message"], error
    bad_position = gateway.http.get("/api/v1/budgets/events",
                                    headers={**a.headers(), "Last-Event-ID": "x"})  # fmt: skip
    assert bad_position.status_code == 400
    assert _get(gateway, a, "tenant").json()["limit_usd"] == 60  # nothing refused changed it

    # reading takes analytics:read or tenant:admin; writing takes tenant:admin
    keys = f"/api/v1/admin/tenants/{a.id}/api-keys"
    analyst = gateway.http.post(keys, json={"scopes": ["analytics:read"]}, headers=gateway.admin)
    reader = gateway.http.post(keys, json={"scopes": ["agents:read"]}, headers=gateway.admin)
    as_analyst = a.headers(analyst.json()["api_key"])
    as_reader = a.headers(reader.json()["api_key"])
    assert gateway.http.get("/api/v1/budgets/tenant", headers=as_analyst).status_code == 200
    assert gateway.http.get("/api/v1/budgets", headers=as_analyst).status_code == 200
    denied = gateway.http.put("/api/v1/budgets/tenant", json={"limit_usd": 1, "period": "day"},
                              headers=as_analyst)  # fmt: skip
    assert denied.status_code == 403
    assert gateway.http.delete("/api/v1/budgets/tenant", headers=as_analyst).status_code == 403
    assert gateway.http.get("/api/v1/budgets", headers=as_reader).status_code == 403
    assert gateway.http.get("/api/v1/budgets/events", headers=as_reader).status_code == 403
