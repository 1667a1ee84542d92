"""Decoding done once for every projection: the recent notifications' events, and the
`Outcome` of a terminal event (each projection folds the same events one after another).
Also `ResolvedStart`: an execution's Started and ModelResolved events, saved together and
read one after the other, folded as one row write instead of an insert and an update."""

from __future__ import annotations

import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application

from domain.execution import Execution
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


@dataclass(frozen=True, slots=True)
class ResolvedStart:
    """An execution's `Started` event and the `ModelResolved` event right after it."""

    started: Any
    resolved: Any


def paired(events: list[Any]) -> list[Any]:
    """`events` with each Started event that is followed by its execution's ModelResolved
    event taken together as a `ResolvedStart` (a restart's ModelResolved follows its
    AttemptRestarted, and a batch may end between the two: those stay apart)."""
    out: list[Any] = []
    i, last = 0, len(events) - 1
    while i <= last:
        event = events[i]
        if (
            i < last
            and type(event) is Execution.Started
            and type(events[i + 1]) is Execution.ModelResolved
            and events[i + 1].originator_id == event.originator_id
        ):
            out.append(ResolvedStart(event, events[i + 1]))
            i += 2
            continue
        out.append(event)
        i += 1
    return out


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
