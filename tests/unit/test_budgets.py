"""Budgets: the model, calendar periods, and the ledger's holds, refusals and alerts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from domain.audit import entry_of
from domain.budgets import (
    Budget,
    BudgetLedger,
    iso,
    parse_scope,
    period_bounds,
    scopes_of,
    worst_cost,
)
from domain.config import ModelSpec
from domain.errors import BudgetExceeded, CBError, InvalidRequest
from domain.tenant import Tenant

TENANT = ("tenant",)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


NOW = at("2025-03-14T15:09:26")


def hard(limit: float, period: str = "month", **extra: object) -> Budget:
    return Budget.model_validate({"limit_usd": limit, "period": period, **extra})


def test_a_budget_defaults_to_hard_with_thresholds_at_half_80_and_100_percent() -> None:
    budget = Budget(limit_usd=5, period="day")
    assert budget.enforcement == "hard" and budget.thresholds == [0.5, 0.8, 1.0]
    assert Budget(limit_usd=1, period="day", thresholds=[1.5, 0.2, 0.2]).thresholds == [0.2, 1.5]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"limit_usd": 0, "period": "day"}, "limit_usd"),
        ({"limit_usd": -1, "period": "day"}, "limit_usd"),
        ({"limit_usd": 1, "period": "week"}, "period"),
        ({"limit_usd": 1, "period": "day", "enforcement": "loud"}, "enforcement"),
        ({"limit_usd": 1, "period": "day", "thresholds": [0]}, "thresholds"),
        ({"limit_usd": 1, "period": "day", "thresholds": [10.5]}, "thresholds"),
        ({"limit_usd": 1, "period": "day", "cap": 3}, "cap"),
        ({"period": "day"}, "limit_usd"),
    ],
)
def test_a_bad_budget_is_refused_naming_its_field(body: dict, field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Budget.model_validate(body)
    assert raised.value.errors()[0]["loc"][0] == field


def test_scopes_are_the_tenant_or_one_agent() -> None:
    assert parse_scope("tenant") == "tenant"
    assert parse_scope("agent:0b7c-11") == "agent:0b7c-11"
    for bad in ("", "team", "agent:", "agent:a/b", "Tenant"):
        with pytest.raises(InvalidRequest) as raised:
            parse_scope(bad)
        assert raised.value.details == {"param": "scope"}
    assert scopes_of("") == ("tenant",) and scopes_of("a1") == ("tenant", "agent:a1")


def test_periods_are_utc_calendar_days_and_months() -> None:
    assert period_bounds("day", NOW) == (at("2025-03-14T00:00:00"), at("2025-03-15T00:00:00"))
    assert period_bounds("month", NOW) == (at("2025-03-01T00:00:00"), at("2025-04-01T00:00:00"))
    december = at("2024-12-31T23:59:59")
    assert period_bounds("month", december) == (at("2024-12-01"), at("2025-01-01"))
    assert period_bounds("day", at("2025-03-15T00:00:00"))[0] == at("2025-03-15T00:00:00")
    assert iso(at("2025-04-01T00:00:00")) == "2025-04-01T00:00:00Z"


def test_the_worst_cost_is_the_prompt_and_max_tokens_or_the_models_ceiling() -> None:
    model = ModelSpec(provider="p", context_window=8000, max_output_tokens=1000,
                      input_price_per_mtok=2.0, output_price_per_mtok=10.0)  # fmt: skip
    assert worst_cost(model, 500, 100) == pytest.approx((500 * 2 + 100 * 10) / 1e6)
    assert worst_cost(model, 500, None) == pytest.approx((500 * 2 + 1000 * 10) / 1e6)


def test_a_hard_budget_admits_exactly_up_to_its_limit_counting_holds() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(0.3), NOW)
    held = [ledger.admit(TENANT, 0.1, NOW) for _ in range(3)]  # 0.1 * 3: exact, not a float sum
    with pytest.raises(BudgetExceeded) as raised:
        ledger.admit(TENANT, 0.1, NOW)
    err = raised.value
    assert err.status == 402 and err.type == "budget_exceeded"
    assert err.details == {
        "scope": "tenant",
        "limit_usd": 0.3,
        "period": "month",
        "spent_usd": 0.0,
        "reserved_usd": 0.3,
        "period_end": "2025-04-01T00:00:00Z",
    }
    assert isinstance(CBError.from_dict(err.to_dict()), BudgetExceeded)  # crosses Ray as itself
    ledger.settle(held[0], 0.04, NOW)  # it cost less than it held: the rest comes back
    assert ledger.status("tenant", NOW)["reserved_usd"] == pytest.approx(0.2)
    ledger.admit(TENANT, 0.06, NOW)  # 0.04 + 0.2 + 0.06 = 0.3
    with pytest.raises(BudgetExceeded):
        ledger.admit(TENANT, 0.000000001, NOW)
    status = ledger.status("tenant", NOW)
    assert (status["spent_usd"], status["remaining_usd"]) == (0.04, 0.0)


def test_a_refusal_holds_nothing_in_any_scope() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(10), NOW)
    ledger.set("agent:a", hard(1), NOW)
    with pytest.raises(BudgetExceeded) as raised:
        ledger.admit(scopes_of("a"), 2, NOW)
    assert raised.value.details["scope"] == "agent:a"
    assert ledger.status("tenant", NOW)["reserved_usd"] == 0
    ledger.admit(scopes_of("b"), 2, NOW)  # another agent: only the tenant's budget counts
    assert ledger.status("tenant", NOW)["reserved_usd"] == 2
    assert ledger.status("agent:a", NOW)["reserved_usd"] == 0


def test_a_soft_budget_never_refuses_and_alerts_once_per_threshold() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(1, enforcement="soft"), NOW)
    crossed = []
    for _ in range(6):
        crossed += ledger.settle(ledger.admit(TENANT, 5, NOW), 0.3, NOW)
    assert [(c.threshold, c.spent_usd) for c in crossed] == [(0.5, 0.6), (0.8, 0.9), (1.0, 1.2)]
    assert {c.period_start for c in crossed} == {"2025-03-01T00:00:00Z"}
    assert ledger.status("tenant", NOW)["spent_usd"] == pytest.approx(1.8)
    assert ledger.status("tenant", NOW)["remaining_usd"] == 0


def test_a_new_period_starts_from_nothing_and_alerts_again() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(1, period="day", thresholds=[0.5]), NOW)
    assert [c.threshold for c in ledger.settle(ledger.admit(TENANT, 1, NOW), 0.6, NOW)] == [0.5]
    late = ledger.admit(TENANT, 0.3, NOW)  # started today, ends tomorrow
    tomorrow = NOW + 86_400
    assert ledger.settle(late, 0.3, tomorrow) == []  # charged to the day it started in
    status = ledger.status("tenant", tomorrow)
    assert (status["spent_usd"], status["reserved_usd"]) == (0, 0)
    assert status["period_end"] == "2025-03-16T00:00:00Z"
    again = ledger.settle(ledger.admit(TENANT, 1, tomorrow), 0.5, tomorrow)
    assert [(c.threshold, c.period_start) for c in again] == [(0.5, "2025-03-15T00:00:00Z")]


def test_changing_a_budget_keeps_the_spending_and_alerts_afresh() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(1, thresholds=[0.5]), NOW)
    ledger.settle(ledger.admit(TENANT, 1, NOW), 0.6, NOW)
    assert not ledger.needs_spent("tenant", hard(2, thresholds=[0.5]))
    ledger.set("tenant", hard(1, thresholds=[0.5]), NOW)  # the same again: nothing new
    assert ledger.settle(ledger.admit(TENANT, 0, NOW), 0, NOW) == []
    ledger.set("tenant", hard(2, thresholds=[0.5]), NOW)
    assert ledger.status("tenant", NOW)["spent_usd"] == 0.6
    [crossing] = ledger.settle(ledger.admit(TENANT, 1, NOW), 0.5, NOW)
    assert (crossing.threshold, crossing.spent_usd, crossing.limit_usd) == (0.5, 1.1, 2)
    assert ledger.needs_spent("tenant", hard(2, period="day"))


def test_a_budget_set_again_after_removal_is_not_charged_by_earlier_holds() -> None:
    ledger = BudgetLedger()
    ledger.set("tenant", hard(1), NOW)
    early = ledger.admit(TENANT, 0.5, NOW)
    ledger.remove("tenant")
    assert ledger.status("tenant", NOW) is None and not ledger.covers(TENANT)
    ledger.set("tenant", hard(1), NOW, spent_usd=0.25, crossed=(0.5,))  # from the history
    assert ledger.settle(early, 0.5, NOW) == []
    status = ledger.status("tenant", NOW)
    assert (status["spent_usd"], status["reserved_usd"]) == (0.25, 0)
    crossed = ledger.settle(ledger.admit(TENANT, 0.75, NOW), 0.75, NOW)
    assert [c.threshold for c in crossed] == [0.8, 1.0]  # 0.5 was crossed before the restart


def test_only_hard_budgets_refuse() -> None:
    ledger = BudgetLedger()
    assert not ledger.covers(TENANT) and not ledger.refuses(TENANT)
    ledger.set("agent:a", hard(1, enforcement="soft"), NOW)
    assert ledger.covers(scopes_of("a")) and not ledger.refuses(scopes_of("a"))
    ledger.set("tenant", hard(1), NOW)
    assert ledger.refuses(scopes_of("")) and ledger.scopes == ["agent:a", "tenant"]


def test_the_tenant_keeps_budgets_and_this_periods_crossings_and_audits_them() -> None:
    tenant = Tenant(id=__import__("uuid").uuid4(), tenant_id="t1", name="T")
    budget = hard(1).model_dump()
    tenant.set_budget("tenant", budget, "key:k")
    tenant.cross_budget_threshold("tenant", 0.5, "2025-03-01T00:00:00Z", 0.6, 1)
    tenant.cross_budget_threshold("tenant", 0.8, "2025-03-01T00:00:00Z", 0.9, 1)
    assert tenant.budget_crossings["tenant"]["thresholds"] == [0.5, 0.8]
    tenant.cross_budget_threshold("tenant", 0.5, "2025-04-01T00:00:00Z", 0.5, 1)
    assert tenant.budget_crossings["tenant"] == {
        "period_start": "2025-04-01T00:00:00Z", "thresholds": [0.5]}  # fmt: skip
    tenant.set_budget("tenant", budget, "key:k")  # unchanged: the crossings stand
    assert tenant.budget_crossings["tenant"]["thresholds"] == [0.5]
    tenant.set_budget("tenant", {**budget, "limit_usd": 2.0}, "key:k")
    assert "tenant" not in tenant.budget_crossings
    tenant.remove_budget("tenant", "key:k")
    assert tenant.budgets == {}
    entries = [entry_of(e) for e in tenant.collect_events()]
    kinds = [e["kind"] for e in entries if e]
    assert kinds.count("budget.set") == 3 and kinds[-1] == "budget.removed"
    crossed = next(e for e in entries if e and e["kind"] == "budget.threshold_crossed")
    assert crossed["detail"] == {"scope": "tenant", "threshold": 0.5,
                                 "period_start": "2025-03-01T00:00:00Z", "spent_usd": 0.6,
                                 "limit_usd": 1}  # fmt: skip
    assert crossed["actor"] is None
