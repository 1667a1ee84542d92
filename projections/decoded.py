"""Decoding done once for every projection: the recent notifications' events, and the
`Outcome` of a terminal event (each projection folds the same events one after another)."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import Any

from eventsourcing.application import Application

from domain.results import Outcome

KEEP = 2048  # events (and outcomes) kept: more than a catch-up batch

_events: weakref.WeakKeyDictionary[Application[Any], OrderedDict[int, Any]] = (
    weakref.WeakKeyDictionary()
)
_outcomes: OrderedDict[int, tuple[Any, Outcome]] = OrderedDict()


def event_of(app: Application[Any], notification: Any) -> Any:
    """The notification's domain event, decoded by the first projection that reads it."""
    recent = _events.setdefault(app, OrderedDict())
    event = recent.get(notification.id)
    if event is None:
        event = recent[notification.id] = app.mapper.to_domain_event(notification)
        if len(recent) > KEEP:
            recent.popitem(last=False)
    return event


def outcome_of(event: Any) -> Outcome:
    """A terminal event's `Outcome`, validated once."""
    kept = _outcomes.get(id(event))
    if kept is not None and kept[0] is event:
        return kept[1]
    outcome = Outcome.model_validate(event.outcome)
    _outcomes[id(event)] = (event, outcome)
    if len(_outcomes) > KEEP:
        _outcomes.popitem(last=False)
    return outcome


def forget() -> None:
    """Drop every decoded event and outcome (a payload key was destroyed: a copy opened
    under it must not be folded again)."""
    for recent in _events.values():
        recent.clear()
    _outcomes.clear()
