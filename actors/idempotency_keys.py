"""A tenant's idempotency keys, claimed inside its actor (the one place all its requests meet).

`claim` records the key's claim before the work starts; a repeat finds the claim, in memory
or in the store (after a restart of the actor), and gets the target the first request named.
Claims of one key are serialised; different keys never wait for each other.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from actors.event_store import AsyncEventStore
from domain.idempotency import Claim, IdempotencyKey, checked_key, fingerprint, key_hash, key_id

MEMORY = 10_000  # keys kept in memory; the least recently used leaves first


class IdempotencyKeys:
    """Claims of one tenant's keys; the aggregates stay in memory for the actor's life."""

    def __init__(self, store: AsyncEventStore, tenant_id: str) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self._keys: dict[str, IdempotencyKey] = {}
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # key → lock, users

    async def claim(self, key: str, operation: str, body: Any, target: str) -> Claim:
        """Claim `key` for this request (naming `target`) or find the request that did; a
        different request under a live key raises `IdempotencyKeyReused`."""
        checked_key(key)
        printed = fingerprint(operation, body)
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                return await self._claim(key, operation, printed, target)
        finally:
            users[0] -= 1
            if not users[0]:
                self._locks.pop(key, None)

    async def _claim(self, key: str, operation: str, printed: str, target: str) -> Claim:
        now = time.time()
        known = self._keys.get(key) or await self._stored(key)
        if known is None:
            known = IdempotencyKey(
                id=key_id(self.tenant_id, key),
                tenant_id=self.tenant_id,
                key_hash=key_hash(key),
                operation=operation,
                fingerprint=printed,
                target=target,
                claimed_at=now,
            )
        elif known.expired(now):
            known.reclaim(operation, printed, target, now)
        else:
            self._remember(key, known)
            return known.check(operation, printed)
        await self.store.save(known)
        self._remember(key, known)
        return Claim(target=target, fingerprint=printed, fresh=True)

    def _remember(self, key: str, known: IdempotencyKey) -> None:
        self._keys.pop(key, None)
        self._keys[key] = known
        if len(self._keys) > MEMORY:  # the store has the rest
            self._keys.pop(next(iter(self._keys)))

    async def _stored(self, key: str) -> IdempotencyKey | None:
        try:
            found = await self.store.run(self.store.app.repository.get, key_id(self.tenant_id, key))
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, IdempotencyKey) else None
