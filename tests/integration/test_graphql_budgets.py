"""Legacy GraphQL budgets and cost analytics, as the legacy SDKs write them: budgets set
over GraphQL are the ones REST shows, status follows real spending, cost analytics add up
to the REST analytics, and another tenant sees none of it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.client import SQLITE_ONLY, ApiClient, Tenant
from tests.support.graphql import graphql

STATUS = "budgetId limit used percentageUsed isExhausted isWarning remaining message"
BUDGET_STATUS = f"""
query BudgetStatus($userId: String, $projectId: String) {{
  budgetStatus(userId: $userId, projectId: $projectId) {{ {STATUS} }}
}}
"""
SET_BUDGET = (
    f"mutation SetBudget($input: BudgetInput!) {{ setBudget(input: $input) {{ {STATUS} }} }}"
)
COST_ANALYTICS = """
query CostAnalytics($input: CostAnalyticsInput!) {
  costAnalytics(input: $input) {
    totalCost totalTokens averageCostPerToken providerBreakdown modelBreakdown dailyCosts
    periodStart periodEnd
  }
}
"""


_NOW = datetime.now(UTC).replace(microsecond=0)
START = (_NOW - timedelta(days=2)).isoformat().replace("+00:00", "Z")
END = (_NOW + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def _rest_usage(gateway: ApiClient, tenant: Tenant, group_by: str, **query: str) -> list[dict]:
    reply = gateway.http.get(
        "/api/v1/analytics/usage",
        params={"group_by": group_by, "from": START, "to": END, **query},
        headers=tenant.headers(),
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["rows"]


def _analytics(gateway: ApiClient, tenant: Tenant, **extra: Any) -> dict[str, Any]:
    window = {"startDate": START, "endDate": END}
    reply = graphql(gateway, tenant.headers(), COST_ANALYTICS, input={**window, **extra})
    assert "errors" not in reply, reply
    return reply["data"]["costAnalytics"]


@SQLITE_ONLY
def test_legacy_budgets_and_cost_analytics(gateway: ApiClient) -> None:
    tenant, other = gateway.new_tenant("Budgets"), gateway.new_tenant("Other")
    agent = gateway.new_agent(tenant, model="speedy-a", parameters={"max_tokens": 50})
    headers = tenant.headers()

    # SetBudget as `setUserMonthlyBudget(c, u, 100)` sends it: the tenant's budget
    monthly = {"userId": "u-1", "limit": 100.0, "period": "monthly", "warningThreshold": 0.8}
    reply = graphql(gateway, headers, SET_BUDGET, input=monthly)
    assert "errors" not in reply, reply
    status = reply["data"]["setBudget"]
    assert status["budgetId"] == "tenant" and status["limit"] == 100.0 and status["used"] == 0
    rest = gateway.http.get("/api/v1/budgets/tenant", headers=headers).json()
    assert (rest["limit_usd"], rest["period"], rest["thresholds"]) == (100.0, "month", [0.8, 1.0])
    assert rest["enforcement"] == "hard"
    daily = {"projectId": agent["id"], "limit": 5.0, "period": "daily", "warningThreshold": 0.5}
    project = graphql(gateway, headers, SET_BUDGET, input=daily)["data"]["setBudget"]
    assert project["budgetId"] == f"agent:{agent['id']}"
    rest = gateway.http.get(f"/api/v1/budgets/agent:{agent['id']}", headers=headers).json()
    assert (rest["limit_usd"], rest["period"], rest["thresholds"]) == (5.0, "day", [0.5, 1.0])

    # spending shows in the status, as REST counts it
    tags = [f"gql-budget-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for tag in tags:
        gateway.cluster.emulator.script(tag, prompt_tokens=1000, completion_tokens=500)
        assert gateway.execute(tenant, agent["id"], tag).status_code == 200
    status = graphql(gateway, headers, BUDGET_STATUS)["data"]["budgetStatus"]
    spent = gateway.http.get("/api/v1/budgets/tenant", headers=headers).json()["spent_usd"]
    assert status["used"] == spent > 0 and status["budgetId"] == "tenant"
    assert status["percentageUsed"] == round(spent / 100 * 100, 4)
    assert not status["isWarning"] and not status["isExhausted"]
    assert status["remaining"] == 100.0 - spent and "month" in status["message"]
    project = graphql(gateway, headers, BUDGET_STATUS, projectId=agent["id"])["data"]
    assert project["budgetStatus"]["used"] == spent  # every execution was the agent's

    # cost analytics add up to the REST analytics (once the projection has them)
    deadline = time.monotonic() + 10
    while sum(r["executions"] for r in _rest_usage(gateway, tenant, "provider")) < 2:
        assert time.monotonic() < deadline, "the metrics projection never showed them"
        time.sleep(0.2)
    costs = _analytics(gateway, tenant, userId="u-1")
    by_provider = _rest_usage(gateway, tenant, "provider")
    assert costs["totalCost"] == round(sum(r["cost_usd"] for r in by_provider), 9) > 0
    assert costs["totalTokens"] == sum(r["total_tokens"] for r in by_provider) == 3000
    assert costs["averageCostPerToken"] == costs["totalCost"] / 3000
    assert costs["providerBreakdown"] == {r["provider"]: r["cost_usd"] for r in by_provider}
    by_model = _rest_usage(gateway, tenant, "model")
    assert costs["modelBreakdown"] == {r["model"]: r["cost_usd"] for r in by_model}
    by_day = _rest_usage(gateway, tenant, "day")
    assert costs["dailyCosts"] == {r["day"]: r["cost_usd"] for r in by_day}
    assert (costs["periodStart"], costs["periodEnd"]) == (START, END)
    assert _analytics(gateway, tenant, projectId=agent["id"])["totalCost"] == costs["totalCost"]

    # clear errors, and nothing of it for another tenant
    unknown = {**daily, "projectId": str(uuid.uuid4())}
    err = graphql(gateway, headers, SET_BUDGET, input=unknown)["errors"][0]
    assert err["extensions"]["code"] == "NOT_FOUND" and "not found" in err["message"]
    err = graphql(gateway, headers, SET_BUDGET, input={**monthly, "period": "weekly"})["errors"][0]
    assert err["extensions"]["code"] == "BAD_USER_INPUT" and "weekly" in err["message"]
    err = graphql(gateway, other.headers(), BUDGET_STATUS)["errors"][0]
    assert err["extensions"]["code"] == "NOT_FOUND" and "setBudget" in err["message"]
    err = graphql(gateway, other.headers(), BUDGET_STATUS, projectId=agent["id"])["errors"][0]
    assert err["extensions"]["code"] == "NOT_FOUND"
    assert _analytics(gateway, other)["totalCost"] == 0
    assert _analytics(gateway, other)["providerBreakdown"] == {}
    err = graphql(
        gateway,
        other.headers(),
        COST_ANALYTICS,
        input={"projectId": agent["id"], "startDate": "2020-01-01", "endDate": "2020-02-01"},
    )["errors"][0]
    assert err["extensions"]["code"] == "NOT_FOUND"
