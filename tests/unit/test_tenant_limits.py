"""The tenant's limit gate (pure; time is passed in)."""

from __future__ import annotations

import pytest

from domain.errors import RateLimited
from domain.tenant_limits import LimitGate, TenantLimits, estimated_tokens


def _gate(**limits: int) -> LimitGate:
    base = {"requests_per_minute": 60, "max_concurrent_executions": 100}
    return LimitGate(TenantLimits(**{**base, **limits}), now=0.0)


def _refusal(gate: LimitGate, now: float, estimate: int = 10) -> RateLimited:
    with pytest.raises(RateLimited) as caught:
        gate.admit(now, estimate)
    return caught.value


def test_requests_per_minute_admit_the_burst_then_one_per_refill() -> None:
    gate = _gate(requests_per_minute=60, burst=3)
    for _ in range(3):
        gate.admit(0.0, 10)
    refused = _refusal(gate, 0.0)
    assert refused.details["limit"] == "requests_per_minute"
    assert refused.retry_after == pytest.approx(1.0)  # 60/min: one more a second
    assert refused.details["headers"] == {
        "X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3",
    }  # fmt: skip
    gate.admit(1.0, 10)  # refilled one


def test_concurrency_counts_executions_in_flight() -> None:
    gate = _gate(max_concurrent_executions=2)
    gate.admit(0.0, 1)
    gate.admit(0.0, 1)
    assert _refusal(gate, 0.0).details["limit"] == "max_concurrent_executions"
    gate.settle(0.1, 0, 5)
    gate.admit(0.1, 1)


def test_tokens_are_reserved_then_settled_with_real_usage() -> None:
    gate = _gate(tokens_per_minute=1000)
    reserved = gate.admit(0.0, 910)
    assert reserved == 910
    refused = _refusal(gate, 0.0, estimate=200)  # only 90 left while it runs
    assert refused.details["limit"] == "tokens_per_minute"
    assert refused.details["headers"]["X-RateLimit-Remaining-Tokens"] == "90"
    assert refused.retry_after == pytest.approx(110 / (1000 / 60))
    gate.settle(0.0, reserved, 25)  # it used 25: 885 come back
    assert gate.as_api(0.0)["remaining_tokens"] == 975
    gate.admit(0.0, 200)


def test_a_request_bigger_than_the_token_limit_waits_for_a_full_bucket() -> None:
    gate = _gate(tokens_per_minute=100)
    assert gate.admit(0.0, 5000) == 100  # reserves at most the whole minute


def test_using_more_than_reserved_puts_the_bucket_in_debt() -> None:
    gate = _gate(tokens_per_minute=600)
    reserved = gate.admit(0.0, 100)
    gate.settle(0.0, reserved, 1100)  # 1000 more than reserved
    assert gate.as_api(0.0)["remaining_tokens"] == 0
    refused = _refusal(gate, 0.0, estimate=10)
    assert refused.retry_after == pytest.approx((500 + 10) / 10)  # 500 in debt, 10/s


def test_reconfiguring_keeps_what_was_spent() -> None:
    gate = _gate(requests_per_minute=60, burst=10)
    for _ in range(8):
        gate.admit(0.0, 1)
    gate.reconfigure(TenantLimits(requests_per_minute=600, max_concurrent_executions=5), 0.0)
    assert gate.as_api(0.0)["remaining_requests"] == 2
    assert gate.headers(0.0)["X-RateLimit-Limit"] == "600"


def test_the_estimate_counts_the_prompt_and_the_answer_ceiling() -> None:
    body = {"prompt": "x" * 40, "parameters": {"max_tokens": 100}}
    assert estimated_tokens(body, {"system_prompt": "y" * 40}) == 20 + 100
    assert estimated_tokens({"prompt": "hi"}, {"parameters": {"max_tokens": 7}}) == 1 + 7
    assert estimated_tokens({"prompt": "hi"}, {}) == 1 + 256


def test_the_configured_defaults_always_make_valid_limits() -> None:
    huge = TenantLimits(requests_per_minute=100_000_000, max_concurrent_executions=100_000)
    assert LimitGate(huge, 0.0).headers(0.0)["X-RateLimit-Limit"] == "100000000"
