"""A provider's health as the API reports it."""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.support.client import ApiClient


def health_of(
    gateway: ApiClient, headers: dict[str, str], provider: str, until: Callable[[dict], bool]
) -> dict:
    """The provider's health once `until` holds (outcomes reach the provider actor in
    batches, about every 100 ms), or as it is after three seconds."""
    deadline = time.monotonic() + 3
    while True:
        reply = gateway.http.get(f"/api/v1/providers/{provider}", headers=headers)
        assert reply.status_code == 200, reply.text
        health = reply.json()["health"]
        if until(health) or time.monotonic() > deadline:
            return health
        time.sleep(0.1)
