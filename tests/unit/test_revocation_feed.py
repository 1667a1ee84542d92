"""The revocation feed (`actors.revocation_feed`) and a replica's key directory following it
(`api.clients.KeyDirectory`): a revoked key is refused at once, whatever the cache holds."""

from __future__ import annotations

import asyncio
from typing import Any

from actors.revocation_feed import RevocationFeed
from api.clients import KeyDirectory

RECORD = {"tenant_id": "t1", "key_id": "k1", "scopes": [], "revoked": False, "expires_at": None}


class Feeding:
    """The read models as a replica sees them: one valid key, and the feed."""

    def __init__(self, feed: RevocationFeed) -> None:
        self.feed = feed
        self.lookups = 0

    async def lookup_key(self, key_hash: str) -> dict[str, Any] | None:
        self.lookups += 1
        return dict(RECORD) if key_hash == "h1" else None

    async def note_revocations(self, key_ids: list[str]) -> int:
        seq = self.feed.add(key_ids)
        assert await self.feed.applied(seq, 1.0)  # as the projection actor waits
        return seq

    async def revocations_after(
        self, epoch: str | None, seq: int, wait_s: float, follower: str
    ) -> dict:
        return await self.feed.after(epoch, seq, wait_s, follower)


async def test_a_waiter_is_woken_by_the_next_revocation() -> None:
    feed = RevocationFeed()
    first = await feed.after(None, 0, 1.0)
    assert first["reset"] and first["seq"] == 0
    waiting = asyncio.create_task(feed.after(first["epoch"], 0, 5.0))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    feed.add(["k1", "k2"])
    news = await asyncio.wait_for(waiting, 0.5)
    assert news == {"epoch": feed.epoch, "seq": 2, "key_ids": ["k1", "k2"], "reset": False}
    assert (await feed.after(feed.epoch, 1, 0.01))["key_ids"] == ["k2"]
    assert (await feed.after(feed.epoch, 2, 0.01))["key_ids"] == []  # none after the wait
    assert (await feed.after("another life", 2, 0.01))["reset"]


async def test_every_replica_refuses_a_revoked_key_before_its_cache_expires() -> None:
    feed = RevocationFeed()
    here, there = KeyDirectory(Feeding(feed)), KeyDirectory(Feeding(feed))  # type: ignore[arg-type]
    for replica in (here, there):
        await replica.lookup("h1")  # starts following the feed (which first clears the cache)
    await asyncio.sleep(0.05)
    for replica in (here, there):
        assert (await replica.lookup("h1"))["revoked"] is False  # cached for 5 s
    looked_up = there.read_models.lookups
    await here.revoked_here(["k1"])  # returns once every follower has applied it
    assert (await here.lookup("h1"))["revoked"] is True
    assert (await there.lookup("h1"))["revoked"] is True  # pushed to the other, no sleep
    assert there.read_models.lookups == looked_up  # its cache still held the key: the push did it


async def test_a_replica_that_follows_a_new_feed_forgets_every_cached_key() -> None:
    feed = RevocationFeed()
    replica = KeyDirectory(Feeding(feed))  # type: ignore[arg-type]
    await replica.lookup("h1")
    await asyncio.sleep(0.05)
    await replica.lookup("h1")
    assert replica.read_models.lookups == 2  # the first answer of the feed cleared the cache
    replica._cache["h1"] = (1e18, dict(RECORD))
    replica.read_models.feed = RevocationFeed()  # the projection actor's next life
    feed.add(["k9"])  # the old life answers the waiting follower; it asks the new one next
    await asyncio.sleep(0.05)
    assert "h1" not in replica._cache


async def test_a_revocation_waits_for_live_followers_and_not_for_gone_ones() -> None:
    feed = RevocationFeed()
    first = await feed.after(None, 0, 0.01, "slow")
    seq = feed.add(["k1"])
    assert not await feed.applied(seq, 0.05)  # "slow" has not asked again since
    asking = asyncio.create_task(feed.after(first["epoch"], seq, 1.0, "slow"))
    assert await feed.applied(seq, 0.5)
    asking.cancel()
    feed.followers["gone"] = (0, 0.0)  # last heard long ago
    assert await feed.applied(seq, 0.05)
