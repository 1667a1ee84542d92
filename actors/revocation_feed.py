"""The feed of revoked API keys the ingress replicas follow, so a revoked key stops at once
on every replica instead of when its cached verdict expires (push, not TTL)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

KEPT = 10_000  # revocations kept; a replica further behind than this forgets every key
FOLLOWER_TTL_S = 60.0  # a follower not heard from for this long no longer holds revocations


class RevocationFeed:
    """Numbered revocations, the waiters for the next one, and where each follower (ingress
    replica) is. `epoch` changes with each actor life, so a replica that followed an earlier
    life starts over."""

    def __init__(self) -> None:
        self.epoch = uuid.uuid4().hex
        self.seq = 0
        self.entries: list[tuple[int, str]] = []
        self.followers: dict[str, tuple[int, float]] = {}  # id → (position, last heard)
        self._news = asyncio.Event()
        self._heard = asyncio.Event()

    def add(self, key_ids: list[str]) -> int:
        for key_id in key_ids:
            self.seq += 1
            self.entries.append((self.seq, key_id))
        self.entries = self.entries[-KEPT:]
        self._news = _fire(self._news)  # wakes every waiter at once
        return self.seq

    async def after(
        self, epoch: str | None, seq: int, wait_s: float, follower: str | None = None
    ) -> dict[str, Any]:
        """`{"epoch", "seq", "key_ids", "reset"}`: the key ids revoked after `seq`; `reset`
        when the caller's epoch or position is unknown here (it must forget every key).
        Asking again after `seq` tells the feed the follower has applied up to it."""
        known = epoch == self.epoch and seq <= self.seq
        if follower is not None:
            self.followers[follower] = (seq if known else -1, time.monotonic())
            self._heard = _fire(self._heard)
        oldest = self.entries[0][0] if self.entries else self.seq + 1
        if not known or seq < oldest - 1:
            return {"epoch": self.epoch, "seq": self.seq, "key_ids": [], "reset": True}
        if seq == self.seq:
            try:
                await asyncio.wait_for(self._news.wait(), wait_s)
            except TimeoutError:
                pass
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "key_ids": [key for n, key in self.entries if n > seq],
            "reset": False,
        }

    async def applied(self, seq: int, timeout_s: float) -> bool:
        """Wait until every live follower has applied revocations up to `seq` (True), or
        `timeout_s` passes (False: a follower is slow or gone)."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = time.monotonic()
            live = [pos for pos, heard in self.followers.values() if now - heard < FOLLOWER_TTL_S]
            if all(pos >= seq for pos in live):
                return True
            if now >= deadline:
                return False
            heard = self._heard
            try:
                await asyncio.wait_for(heard.wait(), deadline - now)
            except TimeoutError:
                return False


def _fire(event: asyncio.Event) -> asyncio.Event:
    """Set `event` (waking its waiters) and give a fresh one for the next time."""
    event.set()
    return asyncio.Event()
