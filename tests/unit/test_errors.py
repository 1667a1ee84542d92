"""The error registry: every CBError class crosses a process boundary as itself."""

from __future__ import annotations

import pickle

import pytest

from domain import errors
from domain.errors import CBError


def _all_error_classes() -> list[type[CBError]]:
    found: list[type[CBError]] = [CBError]
    pending = list(CBError.__subclasses__())
    while pending:
        cls = pending.pop()
        if cls.__module__ == errors.__name__:
            found.append(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda c: c.__name__)


ALL = _all_error_classes()


def _sample(cls: type[CBError]) -> CBError:
    return cls("it broke", retry_after=2.5, execution_id="e1", details={"field": "name"})


def test_every_error_class_in_the_module_is_registered_under_its_type() -> None:
    for cls in ALL:
        assert errors.ERROR_TYPES[cls.type] is cls


def test_the_registry_holds_every_class_of_the_module_and_nothing_else() -> None:
    assert sorted(errors.ERROR_TYPES.values(), key=lambda c: c.__name__) == ALL


def test_error_types_are_unique() -> None:
    assert len({cls.type for cls in ALL}) == len(ALL)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_an_error_round_trips_through_its_dict(cls: type[CBError]) -> None:
    again = CBError.from_dict(_sample(cls).to_dict())
    assert type(again) is cls
    assert (again.type, again.status, again.retryable) == (cls.type, cls.status, cls.retryable)
    assert (again.message, again.retry_after, again.execution_id, again.details) == (
        "it broke",
        2.5,
        "e1",
        {"field": "name"},
    )


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_an_error_round_trips_through_pickle(cls: type[CBError]) -> None:
    again = pickle.loads(pickle.dumps(_sample(cls)))
    assert type(again) is cls
    assert (again.type, again.status) == (cls.type, cls.status)
    assert again.to_dict() == _sample(cls).to_dict()


def test_overloaded_is_rebuilt_as_overloaded_not_as_an_internal_error() -> None:
    again = CBError.from_dict({"type": "overloaded", "message": "full", "retry_after": 1})
    assert isinstance(again, errors.Overloaded)
    assert (again.status, again.type, again.retry_after) == (503, "overloaded", 1)


def test_an_unknown_type_is_rebuilt_as_an_internal_error() -> None:
    again = CBError.from_dict({"type": "no_such_type", "message": "?"})
    assert type(again) is CBError
    assert (again.type, again.status) == ("internal_error", 500)


def test_the_audit_trail_does_not_cross_a_process_boundary() -> None:
    err = errors.PermissionDenied("no", audit=[{"event": "denied"}])
    assert "audit" not in err.to_dict()
    assert pickle.loads(pickle.dumps(err)).audit is None


def test_a_subclass_that_inherits_its_type_is_not_registered() -> None:
    class Narrower(errors.NotFound):
        pass

    assert errors.ERROR_TYPES["not_found"] is errors.NotFound
    assert type(CBError.from_dict(Narrower("gone").to_dict())) is errors.NotFound


def test_a_second_class_cannot_take_a_registered_type() -> None:
    with pytest.raises(TypeError, match="already taken"):

        class Impostor(CBError):
            type = "not_found"
