"""The record that an erasure happened, without saying whose data it erased."""

from __future__ import annotations

from eventsourcing.domain import Aggregate, event


class Erasure(Aggregate):
    """On SQLite this event takes the notification id of the newest erased event, so later
    events never reuse ids a projection has already passed (SQLite hands out the largest
    rowid plus one, so deleting the newest rows would give their ids out again)."""

    @event("Recorded")
    def __init__(self, erased_events: int) -> None:
        self.erased_events = erased_events
