"""RoutingView, in-process: what it adopts from the config actor and the provider actors."""

from __future__ import annotations

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
