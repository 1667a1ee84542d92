"""The response cache's stores (`actors/cache_store.py`), each test over both backends:
the SQLite file and Redis at 127.0.0.1:6379 (skipped when unreachable, except with CI=true).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from actors.cache_store import CacheStore, RedisCacheStore, SqliteCacheStore, open_store

REDIS_URL = "redis://127.0.0.1:6379/0"
SCOPE = "gpt-4o-mini|agent:v1"


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class Place:
    """Where a backend keeps its entries; `open` makes another store over the same place."""

    url: str | None
    data_dir: str
    prefix: str

    def open(self, **kwargs: Any) -> CacheStore:
        return open_store(self.url, self.data_dir, self.prefix, **kwargs)


async def _redis_place(tmp_path: Path) -> AsyncIterator[Place]:
    """A unique prefix on the test Redis, its keys deleted afterwards."""
    if not _redis_reachable():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is not reachable at {REDIS_URL} (CI=true)")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    prefix = f"cbtest-{uuid.uuid4().hex}"
    yield Place(REDIS_URL, str(tmp_path), prefix)
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(REDIS_URL)
    try:
        names = [name async for name in client.scan_iter(match=f"{prefix}:*", count=500)]
        if names:
            await client.delete(*names)
    finally:
        await client.aclose()


@pytest.fixture(params=["sqlite", "redis"])
async def place(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Place]:
    if request.param == "sqlite":
        yield Place(None, str(tmp_path), f"cbtest-{uuid.uuid4().hex}")
        return
    async for redis_place in _redis_place(tmp_path):
        yield redis_place


@pytest.fixture
async def redis_place(tmp_path: Path) -> AsyncIterator[Place]:
    async for found in _redis_place(tmp_path):
        yield found


@pytest.fixture
async def redis_store(redis_place: Place) -> AsyncIterator[CacheStore]:
    opened = redis_place.open()
    yield opened
    await opened.close()


@pytest.fixture
async def store(place: Place) -> AsyncIterator[CacheStore]:
    opened = place.open()
    yield opened
    await opened.close()


def axis(i: int, dims: int = 8, scale: float = 1.0) -> list[float]:
    """A vector along axis `i`."""
    return [scale if j == i else 0.0 for j in range(dims)]


def entry(text: str) -> dict[str, Any]:
    return {"content": text, "usage": {"prompt_tokens": 3}, "nested": [1, 2.5, None]}


async def test_put_then_get(store: CacheStore) -> None:
    assert await store.get("t-a", "k1") is None
    await store.put("t-a", "k1", entry("one"), ttl_s=30)
    assert await store.get("t-a", "k1") == entry("one")
    await store.put("t-a", "k1", entry("replaced"), ttl_s=30)
    assert await store.get("t-a", "k1") == entry("replaced")


async def test_entries_expire(store: CacheStore) -> None:
    await store.put("t-a", "short", entry("short"), ttl_s=1.0, vector=axis(0), scope=SCOPE)
    await store.put("t-a", "long", entry("long"), ttl_s=30)
    assert await store.get("t-a", "short") == entry("short")
    assert await store.nearest("t-a", SCOPE, axis(0), 0.9) is not None
    await asyncio.sleep(1.2)  # past the TTL; a second of it left room for a busy machine
    assert await store.get("t-a", "short") is None
    assert await store.nearest("t-a", SCOPE, axis(0), 0.9) is None
    assert await store.get("t-a", "long") == entry("long")


async def test_nothing_is_stored_without_a_positive_ttl(store: CacheStore) -> None:
    await store.put("t-a", "k", entry("x"), ttl_s=0)
    assert await store.get("t-a", "k") is None


async def test_a_vector_needs_a_scope(store: CacheStore) -> None:
    with pytest.raises(ValueError, match="scope"):
        await store.put("t-a", "k", entry("x"), ttl_s=30, vector=axis(0))


async def test_tenants_never_see_each_others_entries(store: CacheStore) -> None:
    await store.put("t-a", "shared-key", entry("a's"), ttl_s=30, vector=axis(1), scope=SCOPE)
    assert await store.get("t-b", "shared-key") is None
    assert await store.nearest("t-b", SCOPE, axis(1), -1.0) is None
    await store.put("t-b", "shared-key", entry("b's"), ttl_s=30, vector=axis(1), scope=SCOPE)
    assert await store.get("t-a", "shared-key") == entry("a's")
    assert await store.get("t-b", "shared-key") == entry("b's")
    found = await store.nearest("t-b", SCOPE, axis(1), 0.9)
    assert found is not None and found[1:] == ("shared-key", entry("b's"))


async def test_nearest_picks_the_most_similar_above_the_threshold(store: CacheStore) -> None:
    await store.put("t-a", "x", entry("x"), ttl_s=30, vector=axis(0, scale=3.0), scope=SCOPE)
    await store.put("t-a", "y", entry("y"), ttl_s=30, vector=axis(1), scope=SCOPE)
    await store.put("t-a", "xy", entry("xy"), ttl_s=30, vector=[1.0, 1.0] + [0.0] * 6,
                    scope=SCOPE)  # fmt: skip
    query = [0.9, 0.1] + [0.0] * 6  # cosine 0.994 with x, 0.781 with xy, 0.110 with y
    found = await store.nearest("t-a", SCOPE, query, 0.5)
    assert found is not None
    similarity, key, got = found
    assert (key, got) == ("x", entry("x"))
    assert similarity == pytest.approx(0.9939, abs=1e-3)
    assert await store.nearest("t-a", SCOPE, query, 0.995) is None
    exact = await store.nearest("t-a", SCOPE, axis(1, scale=7.0), 1.0)
    assert exact is not None and exact[1] == "y" and exact[0] == pytest.approx(1.0)


async def test_nearest_skips_vectors_of_another_dimension(store: CacheStore) -> None:
    await store.put("t-a", "short", entry("s"), ttl_s=30, vector=axis(0, dims=4), scope=SCOPE)
    assert await store.nearest("t-a", SCOPE, axis(0), -1.0) is None
    assert await store.nearest("t-a", SCOPE, [0.0] * 4, -1.0) is None  # a zero query


async def test_scopes_are_isolated(store: CacheStore) -> None:
    await store.put("t-a", "k", entry("in one"), ttl_s=30, vector=axis(2), scope="m|agent:v1")
    assert await store.nearest("t-a", "m|agent:v2", axis(2), 0.5) is None
    found = await store.nearest("t-a", "m|agent:v1", axis(2), 0.5)
    assert found is not None and found[1] == "k"


async def test_clear_removes_only_that_tenants_entries(store: CacheStore) -> None:
    await store.put("t-a", "k1", entry("1"), ttl_s=30)
    await store.put("t-a", "k2", entry("2"), ttl_s=30, vector=axis(0), scope=SCOPE)
    await store.put("t-a", "k3", entry("3"), ttl_s=30, vector=axis(1), scope="other")
    await store.put("t-b", "k1", entry("b1"), ttl_s=30, vector=axis(0), scope=SCOPE)
    assert await store.clear("t-a") == 3
    assert await store.get("t-a", "k1") is None
    assert await store.get("t-a", "k2") is None
    assert await store.nearest("t-a", SCOPE, axis(0), -1.0) is None
    assert await store.nearest("t-a", "other", axis(1), -1.0) is None
    assert await store.get("t-b", "k1") == entry("b1")
    assert await store.nearest("t-b", SCOPE, axis(0), 0.9) is not None
    assert await store.clear("t-a") == 0


async def test_another_store_over_the_same_place_sees_the_entries(
    place: Place, store: CacheStore
) -> None:
    await store.put("t-a", "k", entry("kept"), ttl_s=30, vector=axis(3), scope=SCOPE)
    await store.close()
    reopened = place.open()
    try:
        assert await reopened.get("t-a", "k") == entry("kept")
        found = await reopened.nearest("t-a", SCOPE, axis(3), 0.9)
        assert found is not None and found[1:] == ("k", entry("kept"))
    finally:
        await reopened.close()


async def test_the_index_keeps_at_most_max_vectors_dropping_the_oldest(place: Place) -> None:
    capped = place.open(max_vectors=3)
    try:
        for i in range(4):
            await capped.put("t-a", f"k{i}", entry(str(i)), ttl_s=30 + i, vector=axis(i),
                             scope=SCOPE)  # fmt: skip
        assert await capped.nearest("t-a", SCOPE, axis(0), 0.9) is None
        assert await capped.get("t-a", "k0") == entry("0")  # still an exact entry
        for i in range(1, 4):
            found = await capped.nearest("t-a", SCOPE, axis(i), 0.9)
            assert found is not None and found[1] == f"k{i}"
    finally:
        await capped.close()


async def test_concurrent_puts_and_reads(store: CacheStore) -> None:
    await asyncio.gather(
        *(
            store.put("t-a", f"k{i}", entry(str(i)), ttl_s=30, vector=axis(i % 8), scope=SCOPE)
            for i in range(40)
        )
    )
    got = await asyncio.gather(*(store.get("t-a", f"k{i}") for i in range(40)))
    assert got == [entry(str(i)) for i in range(40)]


def test_open_store_picks_the_backend_and_refuses_other_urls(tmp_path: Path) -> None:
    assert isinstance(open_store(None, str(tmp_path), "cb"), SqliteCacheStore)
    sqlite_store = open_store("", str(tmp_path), "cb")
    assert isinstance(sqlite_store, SqliteCacheStore)
    assert sqlite_store.path == tmp_path / "cache.sqlite"
    assert isinstance(open_store(REDIS_URL, str(tmp_path), "cb"), RedisCacheStore)  # lazy
    for bad in ("http://127.0.0.1:6379", "postgres://db/cache", "sqlite:///x.db", "localhost"):
        with pytest.raises(ValueError, match="unsupported cache URL"):
            open_store(bad, str(tmp_path), "cb")
    with pytest.raises(ValueError, match="prefix"):
        open_store(None, str(tmp_path), "")


async def test_redis_layout_and_every_key_expires(
    redis_place: Place, redis_store: CacheStore
) -> None:
    place, store = redis_place, redis_store
    import redis.asyncio as redis_asyncio

    await store.put("t-a", "plain", entry("p"), ttl_s=30)
    await store.put("t-a", "indexed", entry("i"), ttl_s=30, vector=axis(0), scope=SCOPE)
    client = redis_asyncio.from_url(REDIS_URL, decode_responses=True)
    try:
        names = sorted([n async for n in client.scan_iter(match=f"{place.prefix}:*")])
        base = f"{place.prefix}:cache:t-a:"
        assert names == sorted(
            [f"{base}e:plain", f"{base}e:indexed", f"{base}v:{SCOPE}", f"{base}x:{SCOPE}"]
        )
        for name in names:
            assert 0 < await client.pttl(name) <= 32_000, name
    finally:
        await client.aclose()
    with pytest.raises(ValueError, match="':'"):
        await store.get("t-a:b", "k")


async def test_redis_drops_expired_index_members(
    redis_place: Place, redis_store: CacheStore
) -> None:
    place, store = redis_place, redis_store
    import redis.asyncio as redis_asyncio

    await store.put("t-a", "gone", entry("g"), ttl_s=0.2, vector=axis(0), scope=SCOPE)
    await store.put("t-a", "kept", entry("k"), ttl_s=30, vector=axis(1), scope=SCOPE)
    await asyncio.sleep(0.4)
    assert await store.nearest("t-a", SCOPE, axis(0), 0.5) is None
    client = redis_asyncio.from_url(REDIS_URL, decode_responses=True)
    try:
        base = f"{place.prefix}:cache:t-a:"
        assert await client.hkeys(f"{base}v:{SCOPE}") == ["kept"]
        assert await client.zrange(f"{base}x:{SCOPE}", 0, -1) == ["kept"]
    finally:
        await client.aclose()
