"""Where a tenant's cached answers live, so they outlive its actor: Redis or a SQLite file.

`open_store(url, data_dir, prefix)` picks the backend: Redis for a ``redis://`` (or
``rediss://``) URL, shared by the whole cluster; otherwise an embedded SQLite file
(``{data_dir}/cache.sqlite``, one node, safe for several processes). Both keep exact entries
(JSON under a key, with a TTL) and a semantic index per tenant and scope (unit float32
vectors, searched by cosine similarity). Tenants never see each other's entries.

Redis layout, with ``{base}`` = ``{prefix}:cache:{tenant_id}:``:

- ``{base}e:{key}``: the entry's JSON (a string, ``SET … PX ttl``);
- ``{base}v:{scope}``: a hash, ``key`` → the vector as little-endian float32 bytes;
- ``{base}x:{scope}``: a sorted set, ``key`` → when that vector expires (epoch seconds).

Both index keys expire with their longest-lived member. A scope keeps at most
``max_vectors`` vectors, dropping those nearest their expiry first (the oldest, under one
TTL); expired members (and members whose entry is gone) are dropped lazily by `put` and
`nearest`. `clear` finds a tenant's keys by SCAN on ``{base}*`` (so a tenant id may not
contain ``:``; tenant ids are UUIDs).

Backend errors (`redis.exceptions.RedisError`, `sqlite3.Error`) propagate: whether a cache
failure is a miss is the caller's decision.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

DEFAULT_MAX_VECTORS = 2000
_RANK_INLINE = 256  # Redis: more candidates than this are ranked on a worker thread
_FLOAT32 = "<f4"  # how a vector is stored: little-endian float32
_Found = tuple[float, str, dict[str, Any]]


class CacheStore(Protocol):
    """A tenant-partitioned store of cached answers with an optional semantic index."""

    async def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        """The unexpired entry under `key`, or None."""
        ...

    async def put(
        self,
        tenant_id: str,
        key: str,
        entry: dict[str, Any],
        ttl_s: float,
        vector: list[float] | None = None,
        scope: str | None = None,
    ) -> None:
        """Store `entry` (JSON-able) under `key` for `ttl_s` seconds (nothing when ≤ 0);
        with `vector`, also index it for `nearest` within `scope` (required then; a zero
        vector is not indexed)."""
        ...

    async def nearest(
        self, tenant_id: str, scope: str, vector: list[float], threshold: float
    ) -> tuple[float, str, dict[str, Any]] | None:
        """The unexpired entry of the tenant's scope whose vector is most similar (cosine)
        to `vector`, if at least `threshold`: (similarity, key, entry); else None."""
        ...

    async def clear(self, tenant_id: str) -> int:
        """Delete all the tenant's entries and vectors; how many unexpired entries went."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


def open_store(
    url: str | None, data_dir: str, prefix: str, *, max_vectors: int = DEFAULT_MAX_VECTORS
) -> CacheStore:
    """The store at `url`: None or "" → SQLite at ``{data_dir}/cache.sqlite``;
    ``redis://…`` or ``rediss://…`` → Redis, every key under ``{prefix}:cache:``."""
    if not prefix:
        raise ValueError("the cache store needs a non-empty key prefix")
    if not url:
        return SqliteCacheStore(Path(data_dir) / "cache.sqlite", max_vectors=max_vectors)
    if url.startswith(("redis://", "rediss://")):
        return RedisCacheStore(url, prefix, max_vectors=max_vectors)
    scheme = url.partition("://")[0] if "://" in url else url[:20]
    raise ValueError(
        f"unsupported cache URL scheme {scheme!r}: use redis://host:port/db (or rediss://), "
        "or leave CB_CACHE_URL unset for the embedded SQLite file"
    )


# ---------------------------------------------------------------------------- vectors
# numpy is imported where a vector is handled: most tenant actors never do (semantic caching
# is opt-in), and importing it costs each actor ~0.1 s of its cold start and memory.


def _unit_blob(vector: list[float]) -> bytes | None:
    """`vector` scaled to length 1, as little-endian float32 bytes; None if it has no length
    (or is not finite)."""
    import numpy as np

    array = np.asarray(vector, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        return None
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return (array / norm).astype(_FLOAT32).tobytes()


def _ranked(
    vector: list[float], candidates: list[tuple[str, bytes]], threshold: float
) -> list[tuple[float, str]]:
    """(similarity, key) of the candidates at or above `threshold`, most similar first;
    candidates of another dimension than `vector` are skipped."""
    import numpy as np

    query = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(query)) if query.ndim == 1 else 0.0
    if not candidates or not np.isfinite(norm) or norm == 0.0:
        return []
    width = query.size * np.dtype(_FLOAT32).itemsize
    fitting = [(k, b) for k, b in candidates if len(b) == width]
    if not fitting:
        return []
    matrix = np.frombuffer(b"".join(b for _, b in fitting), dtype=_FLOAT32)
    matrix = matrix.reshape(len(fitting), query.size)
    lengths = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))
    lengths[lengths == 0.0] = np.inf
    dots = matrix @ (query / norm).astype(np.float32)
    similarities = np.clip(dots.astype(np.float64) / lengths, -1.0, 1.0)
    above = np.flatnonzero(similarities >= threshold)
    order = above[np.argsort(-similarities[above], kind="stable")]
    return [(float(similarities[i]), fitting[i][0]) for i in order]


def _check_vector_args(vector: list[float] | None, scope: str | None) -> None:
    if vector is not None and scope is None:
        raise ValueError("a vector is indexed within a scope: pass scope= with it")


# ---------------------------------------------------------------------------- SQLite

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    entry_json TEXT NOT NULL,
    expires_at REAL NOT NULL,
    scope TEXT,
    vector BLOB,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX IF NOT EXISTS entries_by_scope ON entries (tenant_id, scope)
    WHERE vector IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_by_expiry ON entries (expires_at);
"""


def _set_up(db: sqlite3.Connection, attempts: int = 20) -> None:
    """WAL mode and the schema. Switching to WAL is not covered by the busy timeout when
    another connection sets the file up at the same moment, so that is retried."""
    for attempt in range(attempts):
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


class SqliteCacheStore:
    """The cache in one SQLite file (WAL), each call on a worker thread with that thread's
    own connection; several processes of one node may share the file.

    Rows are ``entries(tenant_id, key, entry_json, expires_at, scope, vector)``; expired
    rows are ignored on read and deleted at most every `sweep_every_s` by a `put`. The key
    prefix of `open_store` is not used: the file lies in the deployment's data directory.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_vectors: int = DEFAULT_MAX_VECTORS,
        busy_timeout_s: float = 10.0,
        sweep_every_s: float = 60.0,
    ) -> None:
        self.path = path
        self.max_vectors = max_vectors
        self._busy_timeout_s = busy_timeout_s
        self._sweep_every_s = sweep_every_s
        self._last_sweep = time.time()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema made) on first use."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            return db
        if self._closed:
            raise RuntimeError("the cache store is closed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout_s,
            isolation_level=None,  # autocommit; explicit BEGIN where several statements
            check_same_thread=False,  # only so that `close` may close it
        )
        with self._lock:  # one setup at a time here; other processes: retried below
            _set_up(db)
            self._connections.append(db)
        self._local.db = db
        return db

    async def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        """The unexpired entry under `key`, or None."""
        return await asyncio.to_thread(self._get, tenant_id, key)

    def _get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        row = (
            self._db()
            .execute(
                "SELECT entry_json FROM entries WHERE tenant_id = ? AND key = ? AND expires_at > ?",
                (tenant_id, key, time.time()),
            )
            .fetchone()
        )
        return json.loads(row[0]) if row is not None else None

    async def put(
        self,
        tenant_id: str,
        key: str,
        entry: dict[str, Any],
        ttl_s: float,
        vector: list[float] | None = None,
        scope: str | None = None,
    ) -> None:
        """Store `entry` under `key` for `ttl_s` seconds, indexing `vector` within `scope`."""
        _check_vector_args(vector, scope)
        if ttl_s <= 0:
            return
        text = json.dumps(entry, separators=(",", ":"))
        blob = _unit_blob(vector) if vector is not None else None
        await asyncio.to_thread(self._put, tenant_id, key, text, ttl_s, blob, scope)

    def _put(
        self,
        tenant_id: str,
        key: str,
        text: str,
        ttl_s: float,
        blob: bytes | None,
        scope: str | None,
    ) -> None:
        db = self._db()
        now = time.time()
        db.execute("BEGIN IMMEDIATE")
        try:
            # REPLACE gives the row a new rowid: rowid order is the order of the last puts
            db.execute(
                "INSERT OR REPLACE INTO entries"
                " (tenant_id, key, entry_json, expires_at, scope, vector)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (tenant_id, key, text, now + ttl_s, scope, blob),
            )
            if blob is not None:
                db.execute(
                    "UPDATE entries SET vector = NULL WHERE rowid IN (SELECT rowid FROM entries"
                    " WHERE tenant_id = ? AND scope = ? AND vector IS NOT NULL"
                    " ORDER BY rowid DESC LIMIT -1 OFFSET ?)",
                    (tenant_id, scope, self.max_vectors),
                )
            if now - self._last_sweep >= self._sweep_every_s:
                self._last_sweep = now
                db.execute("DELETE FROM entries WHERE expires_at <= ?", (now,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def nearest(
        self, tenant_id: str, scope: str, vector: list[float], threshold: float
    ) -> tuple[float, str, dict[str, Any]] | None:
        """The most similar unexpired entry of the tenant's scope at or above `threshold`."""
        return await asyncio.to_thread(self._nearest, tenant_id, scope, vector, threshold)

    def _nearest(
        self, tenant_id: str, scope: str, vector: list[float], threshold: float
    ) -> _Found | None:
        db = self._db()
        now = time.time()
        rows = db.execute(
            "SELECT key, vector FROM entries WHERE tenant_id = ? AND scope = ?"
            " AND vector IS NOT NULL AND expires_at > ?",
            (tenant_id, scope, now),
        ).fetchall()
        for similarity, key in _ranked(vector, rows, threshold):
            row = db.execute(
                "SELECT entry_json FROM entries WHERE tenant_id = ? AND key = ? AND expires_at > ?",
                (tenant_id, key, now),
            ).fetchone()
            if row is not None:
                return similarity, key, json.loads(row[0])
        return None

    async def clear(self, tenant_id: str) -> int:
        """Delete all the tenant's rows; how many unexpired entries went."""
        return await asyncio.to_thread(self._clear, tenant_id)

    def _clear(self, tenant_id: str) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            (live,) = db.execute(
                "SELECT COUNT(*) FROM entries WHERE tenant_id = ? AND expires_at > ?",
                (tenant_id, time.time()),
            ).fetchone()
            db.execute("DELETE FROM entries WHERE tenant_id = ?", (tenant_id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(live)

    async def close(self) -> None:
        """Close every thread's connection."""
        self._closed = True
        with self._lock:
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()


# ---------------------------------------------------------------------------- Redis

# KEYS: entry, vectors hash, expiries zset. ARGV: entry JSON, ttl ms, key, vector bytes,
# expires_at (s), now (s), max vectors. Sets the entry, indexes the vector, drops expired
# and surplus members, and lets the index keys live as long as their longest member.
_PUT_INDEXED = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[3], ARGV[5], ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
for i = 1, #expired do redis.call('HDEL', KEYS[2], expired[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[6])
local surplus = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[7])
if surplus > 0 then
  local old = redis.call('ZRANGE', KEYS[3], 0, surplus - 1)
  for i = 1, #old do redis.call('HDEL', KEYS[2], old[i]) end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, surplus - 1)
end
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[2] then
  local at = math.ceil(tonumber(last[2]) * 1000) + 1000
  redis.call('PEXPIREAT', KEYS[2], at)
  redis.call('PEXPIREAT', KEYS[3], at)
end
return 1
"""


def _glob_escape(text: str) -> str:
    """`text` with Redis glob's special characters escaped, for SCAN's MATCH."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisCacheStore:
    """The cache in Redis (`redis.asyncio`), shared by every node of the cluster; see the
    module's docstring for the key layout."""

    def __init__(self, url: str, prefix: str, *, max_vectors: int = DEFAULT_MAX_VECTORS) -> None:
        import redis.asyncio as redis_asyncio

        self.prefix = prefix
        self.max_vectors = max_vectors
        self._redis: Redis = redis_asyncio.from_url(
            url, socket_timeout=5.0, socket_connect_timeout=5.0, health_check_interval=30
        )
        self._put_indexed = self._redis.register_script(_PUT_INDEXED)

    def _base(self, tenant_id: str) -> str:
        if ":" in tenant_id:  # `{base}*` of tenant "a" would also match tenant "a:b"
            raise ValueError(f"a tenant id for the cache cannot contain ':' ({tenant_id!r})")
        return f"{self.prefix}:cache:{tenant_id}:"

    async def get(self, tenant_id: str, key: str) -> dict[str, Any] | None:
        """The unexpired entry under `key`, or None."""
        raw = await self._redis.get(f"{self._base(tenant_id)}e:{key}")
        return json.loads(raw) if raw is not None else None

    async def put(
        self,
        tenant_id: str,
        key: str,
        entry: dict[str, Any],
        ttl_s: float,
        vector: list[float] | None = None,
        scope: str | None = None,
    ) -> None:
        """Store `entry` under `key` for `ttl_s` seconds, indexing `vector` within `scope`."""
        _check_vector_args(vector, scope)
        base = self._base(tenant_id)
        if ttl_s <= 0:
            return
        ttl_ms = max(1, round(ttl_s * 1000))
        text = json.dumps(entry, separators=(",", ":"))
        blob = _unit_blob(vector) if vector is not None else None
        if blob is None:
            await self._redis.set(f"{base}e:{key}", text, px=ttl_ms)
            return
        now = time.time()
        await self._put_indexed(
            keys=[f"{base}e:{key}", f"{base}v:{scope}", f"{base}x:{scope}"],
            args=[text, ttl_ms, key, blob, repr(now + ttl_s), repr(now), self.max_vectors],
        )

    async def nearest(
        self, tenant_id: str, scope: str, vector: list[float], threshold: float
    ) -> tuple[float, str, dict[str, Any]] | None:
        """The most similar unexpired entry of the tenant's scope at or above `threshold`;
        drops the expired members it meets, and those whose entry is gone."""
        base = self._base(tenant_id)
        vectors_key, expiries_key = f"{base}v:{scope}", f"{base}x:{scope}"
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(vectors_key)
            pipe.zrangebyscore(expiries_key, "-inf", repr(now))
            members, expired_raw = await pipe.execute()
        expired = set(expired_raw)
        candidates = [(k.decode(), v) for k, v in members.items() if k not in expired]
        stale: list[str] = [k.decode() for k in expired]
        found: _Found | None = None
        if len(candidates) > _RANK_INLINE:  # keep the event loop free during the math
            ranked = await asyncio.to_thread(_ranked, vector, candidates, threshold)
        else:
            ranked = _ranked(vector, candidates, threshold)
        for similarity, key in ranked:
            raw = await self._redis.get(f"{base}e:{key}")
            if raw is not None:
                found = (similarity, key, json.loads(raw))
                break
            stale.append(key)
        if stale:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hdel(vectors_key, *stale)
                pipe.zrem(expiries_key, *stale)
                await pipe.execute()
        return found

    async def clear(self, tenant_id: str) -> int:
        """Delete every key of the tenant (found by SCAN); how many entries went."""
        base = self._base(tenant_id)
        entry_mark = f"{base}e:".encode()
        count = 0
        batch: list[bytes] = []
        async for name in self._redis.scan_iter(match=_glob_escape(base) + "*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                count += await self._unlink(batch, entry_mark)
                batch = []
        if batch:
            count += await self._unlink(batch, entry_mark)
        return count

    async def _unlink(self, names: list[bytes], entry_mark: bytes) -> int:
        """Unlink `names`; how many of those that existed were entries."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.unlink(name)
            gone = await pipe.execute()
        return sum(
            1 for name, n in zip(names, gone, strict=True) if n and name.startswith(entry_mark)
        )

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
