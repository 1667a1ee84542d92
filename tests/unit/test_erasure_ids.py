"""Erasing the newest events on SQLite never lets later events reuse their notification ids
(a projection that passed them would skip the new events for good)."""

from __future__ import annotations

from uuid import uuid4

from actors import tenant_data
from actors.event_store import AsyncEventStore
from domain.agent import Agent


def _newest_id(store: AsyncEventStore) -> int:
    return store.app.recorder.max_notification_id() or 0


async def test_events_after_an_erasure_of_the_newest_get_new_ids(store: AsyncEventStore) -> None:
    kept = Agent(id=uuid4(), tenant_id="t-kept", definition={"name": "kept"})
    erased = Agent(id=uuid4(), tenant_id="t-gone", definition={"name": "gone"})
    await store.save(kept)
    await store.save(erased)
    passed = _newest_id(store)  # a projection has folded up to here

    assert await store.run(tenant_data.erase_events, store.app, [erased.id]) == 1
    later = Agent(id=uuid4(), tenant_id="t-later", definition={"name": "later"})
    await store.save(later)

    new = store.app.recorder.select_notifications(start=passed, limit=10, inclusive_of_start=False)
    assert [n.originator_id for n in new] == [later.id]
    assert store.app.repository.get(kept.id).definition == {"name": "kept"}
    assert len(store.app.recorder.select_events(erased.id)) == 0
