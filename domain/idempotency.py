"""Idempotency keys: a `POST` sent again with the same `Idempotency-Key` and the same body
within 24 hours gets the first one's result instead of running again.

Each key of a tenant is an aggregate (its id derived from the tenant and the key), so a claim
is recorded before the work it names starts, and holds across ingress replicas (every claim
of a tenant goes through its one actor) and restarts of that actor (the claim is in the
store). The raw key is not kept, only its hash.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate, event

from domain.errors import IdempotencyKeyReused, InvalidRequest

WINDOW_S = 24 * 3600.0
MAX_KEY_LENGTH = 255
_NAMESPACE = uuid.UUID("6f1c3e52-53b0-4d8e-9a51-6c4c2b1d9e07")


def key_id(tenant_id: str, key: str) -> uuid.UUID:
    """The aggregate id of a tenant's key."""
    return uuid.uuid5(_NAMESPACE, f"{tenant_id}\x00{key}")


def checked_key(key: str) -> str:
    """A key as sent in the header: 1–255 visible ASCII characters."""
    if not 0 < len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
            details={"param": "Idempotency-Key"},
        )
    return key


def fingerprint(operation: str, body: Any) -> str:
    """The hash of what a request asks: its operation (e.g. `execute:<agent id>`) and body."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Claim:
    """What a key names: the first request's fingerprint and the id of what it made."""

    target: str  # an execution id or an agent id
    fingerprint: str
    fresh: bool  # True: this request claimed the key and must do the work


class IdempotencyKey(Aggregate):
    """One key of one tenant; each claim is an event."""

    @event("Claimed")
    def __init__(
        self,
        id: uuid.UUID,  # noqa: A002
        tenant_id: str,
        key_hash: str,
        operation: str,
        fingerprint: str,
        target: str,
        claimed_at: float,
    ) -> None:
        self.tenant_id = tenant_id
        self._take(operation, fingerprint, target, claimed_at)

    def _take(self, operation: str, fingerprint: str, target: str, claimed_at: float) -> None:
        self.operation = operation
        self.fingerprint = fingerprint
        self.target = target
        self.claimed_at = claimed_at

    def expired(self, now: float) -> bool:
        return now - self.claimed_at >= WINDOW_S

    def reclaim(self, operation: str, fingerprint: str, target: str, now: float) -> None:
        """The key's window ended: it names a new request from now."""
        self._reclaimed(self.tenant_id, operation, fingerprint, target, now)

    @event("Reclaimed")
    def _reclaimed(
        self, tenant_id: str, operation: str, fingerprint: str, target: str, claimed_at: float
    ) -> None:
        self._take(operation, fingerprint, target, claimed_at)

    def check(self, operation: str, fingerprint: str) -> Claim:
        """The claim for a repeat of the request; a different request is refused."""
        if operation != self.operation or fingerprint != self.fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used within 24 hours for a different request; "
                "send a new key for a new request",
                details={"param": "Idempotency-Key", "target": self.target},
            )
        return Claim(target=self.target, fingerprint=fingerprint, fresh=False)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
