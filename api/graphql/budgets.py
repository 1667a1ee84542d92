"""Budgets and cost analytics in the legacy shape (`budgetStatus`, `setBudget`,
`costAnalytics`), served from the tenant's budgets and the metrics projection.

Mapping: no id, or only `userId`, is the tenant scope (`tenant`); `projectId` is the agent
scope `agent:<projectId>` (an agent of the tenant). `period` is `day`/`daily` or
`month`/`monthly`. `warningThreshold` (a fraction of the limit) and 1.0 are the budget's
alert thresholds."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import strawberry
from pydantic import ValidationError
from strawberry.scalars import JSON
from strawberry.types import Info

from api.auth import Principal
from api.graphql.context import runtime, tenant, who
from domain.analytics_query import TimeRange, instant
from domain.budgets import TENANT_SCOPE, Budget, parse_scope
from domain.errors import InvalidRequest, NotFound

PERIODS = {"day": "day", "daily": "day", "month": "month", "monthly": "month"}
DEFAULT_WARNING = 0.8  # a budget set over REST without a threshold below 1


@strawberry.type
class BudgetStatusGQL:
    budget_id: str
    limit: float
    used: float
    percentage_used: float
    is_exhausted: bool
    is_warning: bool
    remaining: float
    message: str


@strawberry.type
class CostAnalyticsGQL:
    total_cost: float
    total_tokens: int
    average_cost_per_token: float
    provider_breakdown: JSON
    model_breakdown: JSON
    daily_costs: JSON
    period_start: str
    period_end: str


@strawberry.input
class BudgetInput:
    limit: float
    period: str
    warning_threshold: float
    user_id: str | None = None
    project_id: str | None = None


@strawberry.input
class CostAnalyticsInput:
    start_date: str
    end_date: str
    user_id: str | None = None
    project_id: str | None = None


@strawberry.type
class BudgetQueries:
    @strawberry.field
    async def budget_status(
        self, info: Info, user_id: str | None = None, project_id: str | None = None
    ) -> BudgetStatusGQL:
        """The budget of the tenant (no id, or `userId`) or of agent `projectId`."""
        caller = _reader(info)
        scope = budget_scope(project_id)
        client = tenant(info, caller)
        if project_id:
            await client.get_agent(project_id)  # unknown: NotFound naming it
        try:
            status = await client.get_budget(scope)
        except NotFound as err:
            raise NotFound(f"{err.message}; set one with setBudget") from None
        return status_of(status)

    @strawberry.field
    async def cost_analytics(self, info: Info, input: CostAnalyticsInput) -> CostAnalyticsGQL:  # noqa: A002
        """Cost and tokens of the tenant's (or agent `projectId`'s) ended executions from
        `startDate` to `endDate`, from the metrics projection (as `GET /api/v1/analytics`)."""
        caller = who(info)
        caller.require("analytics:read")
        span = analytics_span(input.start_date, input.end_date)
        if input.project_id:
            await tenant(info, caller).get_agent(input.project_id)  # unknown: NotFound
        read_models = runtime(info).read_models
        filters = {"agent_id": input.project_id, "model": None}
        groups = {}
        for key in ("provider", "model", "day"):
            groups[key] = await read_models.analytics(
                "usage", caller.tenant_id, span.start, span.end, group_by=[key], filters=filters
            )
        return analytics_of(span, groups)


@strawberry.type
class BudgetMutations:
    @strawberry.mutation
    async def set_budget(self, info: Info, input: BudgetInput) -> BudgetStatusGQL:  # noqa: A002
        """Set the tenant's or agent `projectId`'s budget (as `PUT /api/v1/budgets/{scope}`);
        a budget that exists keeps its enforcement, a new one is hard."""
        caller = who(info)
        caller.require("tenant:admin")
        scope = budget_scope(input.project_id)
        client = tenant(info, caller)
        if input.project_id:
            await client.get_agent(input.project_id)  # unknown: NotFound naming it
        try:
            enforcement = (await client.get_budget(scope))["enforcement"]
        except NotFound:
            enforcement = "hard"
        body = budget_body(input.limit, input.period, input.warning_threshold, enforcement)
        return status_of(await client.set_budget(scope, body, caller.by))


def _reader(info: Info) -> Principal:
    """The caller, who may read budgets (`analytics:read` or `tenant:admin`, as on REST)."""
    caller = who(info)
    if "tenant:admin" not in caller.scopes:
        caller.require("analytics:read")
    return caller


def budget_scope(project_id: str | None) -> str:
    """`tenant`, or `agent:<projectId>` (checked as REST checks a scope)."""
    if not project_id:
        return TENANT_SCOPE
    try:
        return parse_scope("agent:" + project_id)
    except InvalidRequest:
        raise InvalidRequest(
            f"projectId must be an agent id of this tenant, not {project_id[:80]!r}",
            details={"param": "projectId"},
        ) from None


def budget_body(limit: float, period: str, warning: float, enforcement: str) -> dict[str, Any]:
    """The REST budget a legacy `BudgetInput` stands for (validated)."""
    mapped = PERIODS.get(period.strip().lower())
    if mapped is None:
        raise InvalidRequest(
            f"period {period[:40]!r} is not supported; use daily or monthly",
            details={"param": "period", "allowed": sorted(PERIODS)},
        )
    if not 0 < warning <= 1:
        raise InvalidRequest(
            "warningThreshold is a fraction of the limit in (0, 1], e.g. 0.8",
            details={"param": "warningThreshold"},
        )
    body = {"limit_usd": limit, "period": mapped, "enforcement": enforcement,
            "thresholds": sorted({warning, 1.0})}  # fmt: skip
    try:
        return Budget.model_validate(body).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        param = {"limit_usd": "limit"}.get(str(first["loc"][0]), str(first["loc"][0]))
        raise InvalidRequest(f"{param}: {first['msg']}", details={"param": param}) from None


def warning_of(thresholds: list[float]) -> float:
    """The warning threshold of a budget: its highest alert below the limit."""
    below = [t for t in thresholds if t < 1]
    return max(below) if below else DEFAULT_WARNING


def status_of(status: dict[str, Any]) -> BudgetStatusGQL:
    """A budget's REST status (`GET /api/v1/budgets/{scope}`) in the legacy shape."""
    limit, used = status["limit_usd"], status["spent_usd"]
    share = used / limit if limit else 0.0
    warning = warning_of(status.get("thresholds") or [])
    exhausted, warned = used >= limit, share >= warning
    state = "exhausted" if exhausted else "over its warning threshold" if warned else "within"
    message = (
        f"{status['scope']} budget: {used:.6g} of {limit:g} USD used this {status['period']} "
        f"({share * 100:.1f}%), {state}"
    )
    return BudgetStatusGQL(
        budget_id=status["scope"],
        limit=limit,
        used=used,
        percentage_used=round(share * 100, 4),
        is_exhausted=exhausted,
        is_warning=warned,
        remaining=status["remaining_usd"],
        message=message,
    )


def analytics_span(start: str, end: str) -> TimeRange:
    """The range of `startDate` to `endDate` (ISO 8601 or unix seconds); a date without a
    time as `endDate` includes that whole day."""
    stop = instant(end, "endDate")
    if _date_only(end):
        stop += 86400
    begin = instant(start, "startDate")
    try:
        return TimeRange.of(str(begin), str(stop), time.time())
    except InvalidRequest as err:
        raise InvalidRequest(err.message.replace("from", "startDate").replace("to", "endDate"),
                             details={"param": "startDate"}) from None  # fmt: skip


def _date_only(text: str) -> bool:
    try:
        dt.date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


def analytics_of(span: TimeRange, groups: dict[str, list[dict[str, Any]]]) -> CostAnalyticsGQL:
    """The legacy cost analytics from usage rows grouped by provider, model and day (each a
    JSON object of the group's key → cost in USD)."""

    def costs(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
        return {str(r[key] or "none"): r["cost_usd"] for r in rows}

    by_provider = groups["provider"]
    total_cost = round(sum(r["cost_usd"] for r in by_provider), 9)
    total_tokens = sum(r["total_tokens"] for r in by_provider)
    bounds = span.as_api()
    return CostAnalyticsGQL(
        total_cost=total_cost,
        total_tokens=total_tokens,
        average_cost_per_token=total_cost / total_tokens if total_tokens else 0.0,
        provider_breakdown=costs(by_provider, "provider"),
        model_breakdown=costs(groups["model"], "model"),
        daily_costs=costs(groups["day"], "day"),
        period_start=bounds["from"],
        period_end=bounds["to"],
    )
