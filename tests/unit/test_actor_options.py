"""The Ray options our actors start with (`actors.names.get_or_create`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from actors import names
from actors.settings import Settings


class _Started:
    """What `cls.options(**options).remote(*args)` was given, as Ray's actor class takes it."""

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}
        self.args: tuple[Any, ...] = ()

    def remote(self, *args: Any) -> _Started:
        self.args = args
        return self


class _ActorClass:
    def __init__(self) -> None:
        self.started = _Started()

    def options(self, **options: Any) -> _Started:
        self.started.options = options
        return self.started


@pytest.fixture
def name() -> Iterator[str]:
    made = f"test:{uuid.uuid4().hex}"
    yield made
    names.forget(made)


def test_our_actors_calls_are_no_ray_task_events_by_default(name: str) -> None:
    cls = _ActorClass()
    settings = Settings()
    names.get_or_create(name, cls, settings, "tenant-1")
    options = cls.started.options
    # as Serve has it for its own actors: no task event per call to send to the GCS
    assert options["enable_task_events"] is False
    assert options["name"] == name and options["lifetime"] == "detached"
    assert cls.started.args == (settings, "tenant-1")


def test_cb_ray_task_events_records_them(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_RAY_TASK_EVENTS", "1")
    settings = Settings.from_env()
    assert settings.ray_task_events
    cls = _ActorClass()
    names.get_or_create(name, cls, settings)
    assert cls.started.options["enable_task_events"] is True
