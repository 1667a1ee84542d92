"""`mortgage_calculator`: a fixed-rate loan's payment, interest and amortisation, to the cent.

The schedule is computed month by month the way lenders do: each month's interest is the
balance times the monthly rate rounded to cents, and the last payment clears what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.tools.base import BuiltinTool, ToolInputError, cents, money, number, percent


@dataclass(frozen=True)
class Month:
    payment: Decimal
    interest: Decimal
    principal: Decimal
    balance: Decimal  # after this month's payment


def monthly_payment(loan: Decimal, annual_rate_percent: float, months: int) -> Decimal:
    """The level payment that repays `loan` in `months` (the annuity formula), to the cent."""
    rate = Decimal(str(annual_rate_percent)) / 1200
    if rate == 0:
        return money(loan / months)
    return money(loan * rate / (1 - (1 + rate) ** -months))


def schedule(loan: Decimal, annual_rate_percent: float, months: int) -> list[Month]:
    """Every month of the loan; the last payment is adjusted so the balance ends at zero."""
    rate = Decimal(str(annual_rate_percent)) / 1200
    payment = monthly_payment(loan, annual_rate_percent, months)
    balance, rows = loan, []
    for month in range(1, months + 1):
        interest = money(balance * rate)
        principal = balance if month == months else min(payment - interest, balance)
        balance -= principal
        rows.append(Month(principal + interest, interest, principal, balance))
    return rows


def balance_after(rows: list[Month], months: int) -> Decimal:
    """What is still owed after `months` (at least 1) payments; zero once the loan is paid."""
    return rows[months - 1].balance if months < len(rows) else Decimal(0)


def yearly_summary(rows: list[Month], loan: Decimal) -> list[dict[str, Any]]:
    """Principal, interest and the ending balance of years 1–5, every fifth year and the last."""
    years = (len(rows) + 11) // 12
    shown = sorted({*range(1, min(years, 5) + 1), *range(5, years + 1, 5), years})
    out = []
    for year in shown:
        months = rows[(year - 1) * 12 : year * 12]
        paid_off = loan - months[-1].balance
        out.append(
            {
                "year": year,
                "principal_paid": cents(sum((m.principal for m in months), Decimal(0))),
                "interest_paid": cents(sum((m.interest for m in months), Decimal(0))),
                "ending_balance": cents(months[-1].balance),
                "equity_from_principal_percent": percent(paid_off / loan) if loan else 100.0,
            }
        )
    return out


SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "price": number("Purchase price of the property", exclusiveMinimum=0),
        "down_payment": number("Cash paid up front", default=0, minimum=0),
        "annual_rate_percent": number(
            "Yearly interest rate in percent, e.g. 7.2", minimum=0, maximum=100
        ),
        "term_years": {
            "type": "integer",
            "description": "Length of the loan in years",
            "minimum": 1,
            "maximum": 50,
            "default": 30,
        },
        "property_tax_annual": number("Property tax per year", default=0, minimum=0),
        "insurance_annual": number("Homeowner's insurance per year", default=0, minimum=0),
        "hoa_monthly": number("HOA or other fees per month", default=0, minimum=0),
        "pmi_annual_percent": number(
            "Mortgage insurance per year as a percent of the loan",
            default=0,
            minimum=0,
            maximum=10,
        ),
    },
    "required": ["price", "annual_rate_percent"],
}


def compute(args: dict[str, Any]) -> dict[str, Any]:
    price, down = money(args["price"]), money(args["down_payment"])
    if down >= price:
        raise ToolInputError("down_payment must be less than price (nothing to finance)")
    loan = price - down
    months = args["term_years"] * 12
    rows = schedule(loan, args["annual_rate_percent"], months)
    total_paid = sum((m.payment for m in rows), Decimal(0))
    payment = rows[0].payment
    tax = money(Decimal(str(args["property_tax_annual"])) / 12)
    insurance = money(Decimal(str(args["insurance_annual"])) / 12)
    fees = money(args["hoa_monthly"])
    pmi = money(loan * Decimal(str(args["pmi_annual_percent"])) / 1200)
    return {
        "loan_amount": cents(loan),
        "down_payment_percent": percent(down / price),
        "loan_to_value_percent": percent(loan / price),
        "number_of_payments": months,
        "monthly_payment": cents(payment),
        "final_payment": cents(rows[-1].payment),
        "total_paid": cents(total_paid),
        "total_interest": cents(total_paid - loan),
        "monthly_housing_cost": {
            "principal_and_interest": cents(payment),
            "property_tax": cents(tax),
            "insurance": cents(insurance),
            "hoa_fees": cents(fees),
            "mortgage_insurance": cents(pmi),
            "total": cents(payment + tax + insurance + fees + pmi),
        },
        "amortization_summary": yearly_summary(rows, loan),
    }


MORTGAGE_CALCULATOR = BuiltinTool(
    name="mortgage_calculator",
    description=(
        "Fixed-rate mortgage: monthly payment, total paid and interest, a yearly amortisation "
        "summary, and the monthly housing cost with tax, insurance and fees. Exact to the cent."
    ),
    input_schema=SCHEMA,
    compute=compute,
)
