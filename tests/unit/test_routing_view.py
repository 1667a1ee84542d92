"""RoutingView, in-process: what it adopts from the config actor and the provider actors."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import routing_view
from actors.routing_view import RoutingView
from tests.unit.fakes import FakePeers, FakeProviderActor


def _view(
    fakes: FakePeers, providers: list[str], adopted: list, grouped: dict | None = None
) -> RoutingView:
    endpoints = grouped if grouped is not None else {p: (p,) for p in providers}
    return RoutingView(
        lambda: fakes.config_actor, fakes.provider, lambda: endpoints, adopted.append
    )


async def test_refresh_adopts_a_new_configuration_once_and_the_open_breakers() -> None:
    fakes = FakePeers()
    fakes.providers["openai"] = FakeProviderActor(breaker="open")
    fakes.providers["anthropic"] = FakeProviderActor(breaker="closed")
    adopted: list = []
    view = _view(fakes, ["anthropic", "openai"], adopted)
    await view.refresh()
    assert adopted == [fakes.config_actor.data] and view.config_version == "v1"
    assert view.open == {"openai"}
    await view.refresh()  # the same version: asked again, nothing new adopted
    assert fakes.config_actor.asked == 2 and len(adopted) == 1


async def test_an_unreachable_provider_keeps_what_was_last_known_of_its_breaker() -> None:
    fakes = FakePeers()
    fakes.providers["a"] = FakeProviderActor(breaker="open")
    fakes.providers["b"] = FakeProviderActor(breaker="closed")
    view = _view(fakes, ["a", "b"], [])
    await view.refresh()
    fakes.providers["a"].breaker = fakes.providers["b"].breaker = "unreachable"
    await view.refresh()
    assert view.open == {"a"}


async def test_a_refused_lease_marks_the_provider_open_at_once() -> None:
    fakes = FakePeers()
    view = _view(fakes, ["a"], [])
    await view.refresh()
    assert view.open == set()
    view.mark_open("a")
    assert view.open == {"a"}


async def test_a_provider_is_open_only_when_every_endpoint_is() -> None:
    fakes = FakePeers()
    fakes.providers["p:a"] = FakeProviderActor(breaker="open")
    fakes.providers["p:b"] = FakeProviderActor(breaker="closed")
    view = _view(fakes, [], [], {"p": ("p:a", "p:b")})
    await view.refresh()
    assert view.open_endpoints == {"p:a"} and view.open == set()
    view.mark_open("p:b")
    assert view.open_endpoints == {"p:a", "p:b"} and view.open == {"p"}


async def test_views_from_lease_calls_spare_the_refresh_its_calls(monkeypatch: Any) -> None:
    """A provider whose view came on a lease call is not asked on its own; one whose view is
    older than REFRESH_S is; the config actor is asked only every CONFIG_POLL_S."""
    monkeypatch.setattr(routing_view, "REFRESH_S", 0.05)
    monkeypatch.setattr(routing_view, "CONFIG_POLL_S", 60.0)
    fakes = FakePeers()
    fakes.providers["a"] = FakeProviderActor(breaker="closed")
    fakes.providers["b"] = FakeProviderActor(breaker="closed")
    view = _view(fakes, ["a", "b"], [])
    await view.refresh()  # as at load: everything asked
    assert fakes.config_actor.asked == 1
    await asyncio.sleep(0.06)
    assert view.wants_view("a") and view.wants_view("b")
    view.take_view(
        "a",
        {"breaker": "open", "models": {"m": {"latency_ms": 9.0, "error_rate": 0.0, "samples": 3}}},
    )
    assert not view.wants_view("a") and view.open == {"a"} and view.stats["m"].samples == 3
    await view.refresh(stale_only=True)
    assert (fakes.providers["a"].views_asked, fakes.providers["b"].views_asked) == (1, 2)
    assert fakes.config_actor.asked == 1  # not due: the config actor tells of changes


async def test_word_of_a_new_configuration_fetches_it_at_once_while_in_use() -> None:
    fakes = FakePeers()
    adopted: list = []
    view = _view(fakes, ["a"], adopted)
    await view.refresh()
    fakes.config_actor.version, fakes.config_actor.data = "v2", {"changed": True}
    view.config_changed()  # never used: its next use refreshes anyway
    await asyncio.sleep(0.01)
    assert fakes.config_actor.asked == 1 and view.config_version == "v1"
    await view.fresh()
    view.config_changed()
    await asyncio.sleep(0.01)
    assert view.config_version == "v2" and adopted[-1] == {"changed": True}


async def test_a_marked_open_endpoint_stays_open_until_its_next_view() -> None:
    fakes = FakePeers()
    fakes.providers["a"] = FakeProviderActor(breaker="closed")
    view = _view(fakes, ["a"], [])
    await view.refresh()
    view.mark_open("a")
    fakes.providers["a"].breaker = "unreachable"
    await view.refresh()
    assert view.open == {"a"}  # no view came: the mark holds
    view.take_view("a", {"breaker": "half_open", "models": {}})
    assert view.open == set()
