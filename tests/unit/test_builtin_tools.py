"""Built-in tools against hand-computed figures (pure; no cluster)."""

from __future__ import annotations

import pytest

from domain.tools import BUILTIN_TOOLS, ToolInputError
from tests.support.market import DATES, MOVES, VOLUMES

MORTGAGE = BUILTIN_TOOLS["mortgage_calculator"]
ROI = BUILTIN_TOOLS["roi_calculator"]
STATS = BUILTIN_TOOLS["statistical_analyzer"]

AUSTIN = {  # PED 13.1.2: 123 Investment Lane
    "purchase_price": 450000, "monthly_rent": 2800, "down_payment": 90000,
    "annual_rate_percent": 7.2, "term_years": 30, "vacancy_rate_percent": 5.0,
    "property_management_percent": 8.0, "property_tax_annual": 5400, "insurance_annual": 1200,
    "maintenance_monthly": 300, "appreciation_rate_percent": 4.5,
    "rent_growth_rate_percent": 3.2, "years": 5,
}  # fmt: skip


def test_the_austin_mortgage_is_2443_64_a_month_on_360000() -> None:
    out = MORTGAGE.run(
        {"price": 450000, "down_payment": 90000, "annual_rate_percent": 7.2, "term_years": 30,
         "property_tax_annual": 5400, "insurance_annual": 1200, "hoa_monthly": 0}
    )  # fmt: skip
    assert out["loan_amount"] == 360000 and out["loan_to_value_percent"] == 80.0
    # 360000 × 0.006 / (1 − 1.006^−360) = 2443.6376 → 2443.64
    assert out["monthly_payment"] == 2443.64 and out["number_of_payments"] == 360
    housing = out["monthly_housing_cost"]
    assert (housing["property_tax"], housing["insurance"]) == (450.0, 100.0)
    assert housing["total"] == 2993.64  # 2443.64 + 5400/12 + 1200/12
    # 359 payments of 2443.64 and a last one that clears the rounding left over
    assert out["total_paid"] == pytest.approx(2443.64 * 359 + out["final_payment"], abs=0.005)
    # rounding the payment up by 0.0024 overpays ~3 dollars over 30 years
    assert 2438 < out["final_payment"] < 2443.64
    assert out["total_interest"] == pytest.approx(out["total_paid"] - 360000, abs=0.005)
    first = out["amortization_summary"][0]
    assert first["year"] == 1 and first["principal_paid"] + first["interest_paid"] == (
        pytest.approx(2443.64 * 12, abs=0.005)
    )
    years = [row["year"] for row in out["amortization_summary"]]
    assert years == [1, 2, 3, 4, 5, 10, 15, 20, 25, 30]
    assert out["amortization_summary"][-1]["ending_balance"] == 0.0


def test_a_one_year_loan_matches_its_schedule_worked_by_hand() -> None:
    # 1000 at 12 % over 12 months: payment 88.85; interest 10.00, 9.21, 8.42, … 0.88
    out = MORTGAGE.run({"price": 1000, "annual_rate_percent": 12, "term_years": 1})
    assert out["monthly_payment"] == 88.85 and out["final_payment"] == 88.84
    assert out["total_paid"] == 1066.19 and out["total_interest"] == 66.19
    assert out["amortization_summary"] == [
        {"year": 1, "principal_paid": 1000.0, "interest_paid": 66.19, "ending_balance": 0.0,
         "equity_from_principal_percent": 100.0}
    ]  # fmt: skip


def test_a_zero_rate_loan_is_the_price_split_evenly() -> None:
    out = MORTGAGE.run({"price": 1300, "down_payment": 100, "annual_rate_percent": 0,
                        "term_years": 1})  # fmt: skip
    assert out["monthly_payment"] == 100.0 and out["total_interest"] == 0.0


def test_the_austin_rental_returns_worked_by_hand() -> None:
    out = ROI.run(AUSTIN)
    assert out["gross_annual_rent"] == 33600.0  # 2800 × 12
    assert out["vacancy_loss"] == 1680.0  # 5 %
    assert out["effective_annual_rent"] == 31920.0
    assert out["management_fee_annual"] == 2553.6  # 8 % of collected rent
    assert out["operating_expenses_annual"] == 12753.6  # 5400 + 1200 + 3600 + 2553.60
    assert out["net_operating_income"] == 19166.4
    assert out["cap_rate_percent"] == 4.26  # 19166.40 / 450000
    assert out["annual_debt_service"] == 29323.68  # 2443.64 × 12
    assert out["annual_cash_flow"] == -10157.28
    assert out["monthly_cash_flow"] == -846.44
    assert out["cash_invested"] == 90000.0
    assert out["cash_on_cash_return_percent"] == -11.29
    assert out["debt_service_coverage_ratio"] == 0.65
    year1, year2 = out["projection"][:2]
    assert year1["property_value"] == 470250.0  # 450000 × 1.045
    assert year2["property_value"] == 491411.25  # 450000 × 1.045²
    assert year2["gross_rent"] == 34675.2  # 33600 × 1.032
    # 34675.20 − 1733.76 vacancy − 2635.32 management − 10200 fixed
    assert year2["net_operating_income"] == 20106.12
    assert year1["loan_balance"] < 360000 and year1["equity"] == pytest.approx(
        470250 - year1["loan_balance"], abs=0.005
    )
    five = out["projection"][-1]
    cumulative = sum(row["cash_flow"] for row in out["projection"])
    assert five["cumulative_cash_flow"] == pytest.approx(cumulative, abs=0.01)
    profit = five["equity"] + cumulative - 90000
    assert out["total_return"]["profit"] == pytest.approx(profit, abs=0.01)
    assert out["total_return"]["total_return_percent"] == pytest.approx(
        profit / 90000 * 100, abs=0.006
    )


def test_an_all_cash_purchase_has_no_debt() -> None:
    out = ROI.run({"purchase_price": 100000, "monthly_rent": 1000, "years": 1})
    assert out["annual_debt_service"] == 0.0 and out["debt_service_coverage_ratio"] is None
    assert out["cap_rate_percent"] == 12.0 and out["cash_on_cash_return_percent"] == 12.0
    assert out["total_return"]["total_return_percent"] == 12.0


def test_january_17_is_the_outlier_of_volume_and_price() -> None:
    out = STATS.run({"values": VOLUMES, "labels": DATES, "second_series": MOVES})
    summary = out["summary"]
    assert summary["count"] == 21 and summary["median"] == 1205000
    assert summary["mean"] == pytest.approx(27365000 / 21, abs=1e-6)
    assert (summary["q1"], summary["q3"], summary["iqr"]) == (1185000, 1230000, 45000)
    assert summary["std_dev"] == pytest.approx(436223.784858, abs=1e-5)
    [spike] = out["outliers"]
    assert spike["label"] == "2024-01-17" and spike["index"] == 12 and spike["value"] == 3200000
    assert spike["z_score"] == pytest.approx(4.348467, abs=1e-6)
    assert spike["reasons"] == ["z_score", "iqr"] and spike["direction"] == "high"
    # 1.3M (Jan 3) is past the inner fence, 1230000 + 1.5 × 45000, not the outer one
    assert [(o["label"], o["reasons"]) for o in out["possible_outliers"]] == [
        ("2024-01-03", ["iqr_mild"])
    ]
    assert [o["label"] for o in out["second_series_outliers"]] == ["2024-01-17"]
    assert out["outliers_in_both"] == ["2024-01-17"]
    assert 0.9 < out["correlation"] < 1  # the spike dominates both series


def test_moving_average_trend_and_correlation_on_small_series() -> None:
    out = STATS.run({"values": [1, 2, 3, 4, 5], "second_series": [10, 8, 6, 4, 2],
                     "window": 2})  # fmt: skip
    assert out["moving_average"] == {"window": 2, "values": [1.5, 2.5, 3.5, 4.5]}
    assert out["trend"] == {"slope": 1.0, "intercept": 1.0, "r_squared": 1.0,
                            "direction": "increasing"}  # fmt: skip
    assert out["correlation"] == -1.0
    assert out["z_scores"][0] == pytest.approx(-2 / 1.581139, abs=1e-5)  # sd = √2.5
    flat = STATS.run({"values": [4, 4, 4]})
    assert flat["z_scores"] == [0.0, 0.0, 0.0] and flat["outliers"] == []
    assert flat["trend"]["direction"] == "flat"


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        (MORTGAGE, {"price": 100, "down_payment": 200, "annual_rate_percent": 5},
         "down_payment must be less than price"),
        (MORTGAGE, {"price": 100000}, "missing argument(s): annual_rate_percent"),
        (MORTGAGE, {"price": "lots", "annual_rate_percent": 5}, "price must be a number"),
        (MORTGAGE, {"price": 1000, "annual_rate_percent": 5, "term_years": 2.5},
         "term_years must be a whole number"),
        (MORTGAGE, {"price": 1000, "annual_rate_percent": 500}, "at most 100"),
        (MORTGAGE, {"price": 1000, "annual_rate_percent": 5, "color": "red"},
         "unknown argument(s): color"),
        (ROI, {"purchase_price": 0, "monthly_rent": 10}, "purchase_price must be more than 0"),
        (STATS, {"values": [1, 2]}, "values needs at least 3 items"),
        (STATS, {"values": [1, 2, True]}, "values[2] must be a finite number"),
        (STATS, {"values": [1, 2, 3], "labels": ["a"]}, "labels must have as many items"),
    ],
)  # fmt: skip
def test_bad_arguments_say_which_and_why(tool, arguments, says) -> None:
    with pytest.raises(ToolInputError, match=None) as caught:
        tool.run(arguments)
    assert says in str(caught.value)


def test_numbers_written_as_strings_are_read() -> None:
    out = MORTGAGE.run({"price": "1,000", "annual_rate_percent": "12", "term_years": 1})
    assert out["monthly_payment"] == 88.85
