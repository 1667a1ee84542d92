"""`roi_calculator`: a rental property's income, return and a multi-year projection.

Year one uses the given figures; in later years rent grows by `rent_growth_rate_percent`,
expenses by `expense_growth_rate_percent`, and the value by `appreciation_rate_percent`.
Vacancy is a share of gross rent and management a share of the rent actually collected.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from domain.tools.base import BuiltinTool, ToolInputError, cents, money, number, percent
from domain.tools.mortgage import balance_after, schedule


def _rate(args: dict[str, Any], name: str) -> Decimal:
    return Decimal(str(args[name])) / 100


def _year(args: dict[str, Any], year: int) -> dict[str, Decimal]:
    """Income and expenses of one year (1 = the first)."""
    rent_growth = (1 + _rate(args, "rent_growth_rate_percent")) ** (year - 1)
    cost_growth = (1 + _rate(args, "expense_growth_rate_percent")) ** (year - 1)
    gross = money(Decimal(str(args["monthly_rent"])) * 12 * rent_growth)
    vacancy = money(gross * _rate(args, "vacancy_rate_percent"))
    effective = gross - vacancy
    management = money(effective * _rate(args, "property_management_percent"))
    fixed = sum(
        (Decimal(str(args[k])) for k in ("property_tax_annual", "insurance_annual")),
        Decimal(0),
    ) + 12 * sum(
        (Decimal(str(args[k])) for k in ("maintenance_monthly", "hoa_monthly")), Decimal(0)
    )
    expenses = money(fixed * cost_growth) + management
    return {
        "gross": gross,
        "vacancy": vacancy,
        "effective": effective,
        "management": management,
        "expenses": expenses,
        "noi": effective - expenses,
    }


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "purchase_price": number("Price paid for the property", exclusiveMinimum=0),
        "monthly_rent": number("Expected rent per month", minimum=0),
        "down_payment": number(
            "Cash paid up front; the rest is financed (omit for an all-cash purchase)",
            minimum=0,
        ),
        "annual_rate_percent": number("Mortgage rate in percent", default=0, minimum=0,
                                      maximum=100),
        "term_years": {
            "type": "integer", "description": "Mortgage length in years", "minimum": 1,
            "maximum": 50, "default": 30,
        },
        "closing_costs": number("One-off costs paid in cash at purchase", default=0, minimum=0),
        "vacancy_rate_percent": number("Share of rent lost to vacancy", default=0, minimum=0,
                                       maximum=100),
        "property_management_percent": number(
            "Management fee as a percent of collected rent", default=0, minimum=0, maximum=100
        ),
        "property_tax_annual": number("Property tax per year", default=0, minimum=0),
        "insurance_annual": number("Insurance per year", default=0, minimum=0),
        "maintenance_monthly": number("Maintenance per month", default=0, minimum=0),
        "hoa_monthly": number("HOA or other fees per month", default=0, minimum=0),
        "appreciation_rate_percent": number("Yearly growth of the property's value",
                                            default=0, minimum=-50, maximum=100),
        "rent_growth_rate_percent": number("Yearly rent growth", default=0, minimum=-50,
                                           maximum=100),
        "expense_growth_rate_percent": number("Yearly growth of fixed expenses", default=0,
                                              minimum=-50, maximum=100),
        "selling_cost_percent": number("Cost of selling at the end, percent of the value",
                                       default=0, minimum=0, maximum=50),
        "years": {
            "type": "integer", "description": "Years to project", "minimum": 1, "maximum": 40,
            "default": 5,
        },
    },
    "required": ["purchase_price", "monthly_rent"],
}  # fmt: skip


def compute(args: dict[str, Any]) -> dict[str, Any]:
    price = money(args["purchase_price"])
    down = money(args.get("down_payment", args["purchase_price"]))
    if down > price:
        raise ToolInputError("down_payment cannot be more than purchase_price")
    loan = price - down
    rows = schedule(loan, args["annual_rate_percent"], args["term_years"] * 12) if loan else []
    invested = down + money(args["closing_costs"])
    first = _year(args, 1)
    debt = sum((m.payment for m in rows[:12]), Decimal(0))
    cash_flow = first["noi"] - debt

    projection, cumulative = [], Decimal(0)
    for year in range(1, args["years"] + 1):
        figures = _year(args, year)
        paid = sum((m.payment for m in rows[(year - 1) * 12 : year * 12]), Decimal(0))
        flow = figures["noi"] - paid
        cumulative += flow
        value = money(price * (1 + _rate(args, "appreciation_rate_percent")) ** year)
        owed = balance_after(rows, year * 12) if rows else Decimal(0)
        projection.append(
            {
                "year": year,
                "gross_rent": cents(figures["gross"]),
                "net_operating_income": cents(figures["noi"]),
                "debt_service": cents(paid),
                "cash_flow": cents(flow),
                "cumulative_cash_flow": cents(cumulative),
                "property_value": cents(value),
                "loan_balance": cents(owed),
                "equity": cents(value - owed),
            }
        )
    last = projection[-1]
    sale_costs = money(Decimal(str(last["property_value"])) * _rate(args, "selling_cost_percent"))
    gain = Decimal(str(last["equity"])) - sale_costs + cumulative - invested
    total = gain / invested if invested else None
    years = args["years"]
    return {
        "gross_annual_rent": cents(first["gross"]),
        "vacancy_loss": cents(first["vacancy"]),
        "effective_annual_rent": cents(first["effective"]),
        "management_fee_annual": cents(first["management"]),
        "operating_expenses_annual": cents(first["expenses"]),
        "net_operating_income": cents(first["noi"]),
        "cap_rate_percent": percent(first["noi"] / price),
        "annual_debt_service": cents(debt),
        "debt_service_coverage_ratio": float(round(first["noi"] / debt, 2)) if debt else None,
        "annual_cash_flow": cents(cash_flow),
        "monthly_cash_flow": cents(cash_flow / 12),
        "cash_invested": cents(invested),
        "cash_on_cash_return_percent": percent(cash_flow / invested) if invested else None,
        "projection": projection,
        "total_return": {
            "years": years,
            "selling_costs": cents(sale_costs),
            "profit": cents(gain),
            "total_return_percent": percent(total) if total is not None else None,
            "annualized_return_percent": (
                percent(Decimal(float(1 + total) ** (1 / years)) - 1)
                if total is not None and total > -1
                else None
            ),
        },
    }


ROI_CALCULATOR = BuiltinTool(
    name="roi_calculator",
    description=(
        "Rental property returns: net operating income, cap rate, debt service, cash flow, "
        "cash-on-cash return, and a yearly projection with appreciation, rent growth, vacancy "
        "and management fees, ending in the total return. Exact to the cent."
    ),
    input_schema=SCHEMA,
    compute=compute,
)
