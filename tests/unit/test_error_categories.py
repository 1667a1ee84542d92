"""Every error falls into one category: client (4xx), provider, or internal (other 5xx)."""

from __future__ import annotations

import pytest

from domain import errors
from domain.errors import ERROR_CATEGORIES, ERROR_TYPES, category_of


@pytest.mark.parametrize(
    ("err", "category"),
    [
        (errors.InvalidRequest("bad"), "client"),
        (errors.AuthenticationFailed("no key"), "client"),
        (errors.RateLimited("slow down"), "client"),
        (errors.BudgetExceeded("over"), "client"),
        (errors.ModelNotFound("nope"), "client"),
        (errors.ToolIterationLimit("loop"), "client"),
        (errors.ProviderRejectedRequest("bad payload"), "client"),
        (errors.ContextLengthExceeded("too long"), "client"),
        (errors.ProviderError("502 upstream"), "provider"),
        (errors.ProviderTimeout("slow"), "provider"),
        (errors.ProviderRateLimited("429 upstream"), "provider"),
        (errors.ProviderAuthenticationFailed("bad provider key"), "provider"),
        (errors.ProviderOverloaded("529"), "provider"),
        (errors.CircuitOpen("open"), "provider"),
        (errors.NoModelAvailable("all breakers open"), "provider"),
        (errors.CBError("boom"), "internal"),
        (errors.ServiceUnavailable("starting"), "internal"),
        (errors.Overloaded("queue full"), "internal"),
        (errors.ExecutionInterrupted("actor died"), "internal"),
        (RuntimeError("bug"), "internal"),
        (KeyError("bug"), "internal"),
    ],
)
def test_category_of_an_error(err: BaseException, category: str) -> None:
    assert category_of(err) == category
    assert category_of(type(err)) == category


def test_every_registered_error_type_has_a_known_category() -> None:
    for cls in ERROR_TYPES.values():
        category = category_of(cls)
        assert category in ERROR_CATEGORIES
        if cls.status < 500 and category != "client":
            assert issubclass(cls, errors.ProviderRateLimited)


def test_an_error_rebuilt_from_its_dict_keeps_its_category() -> None:
    err = errors.ProviderTimeout("slow", execution_id="e1")
    assert category_of(errors.CBError.from_dict(err.to_dict())) == "provider"
