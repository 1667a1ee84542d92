"""What a tenant's execution loop talks to outside its actor, handed in rather than looked up.

In a tenant actor these are Ray actor handles (`.method.remote(…)` returning a reply) and the
process's shared HTTP client; unit tests hand in fakes with the same method names and an
`httpx.MockTransport` client.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from actors.http_client import shared_client


@dataclass(frozen=True)
class Peers:
    config_actor: Callable[[], Any]
    provider: Callable[[str], Any]  # a provider's actor, by provider name
    projection: Callable[[], Any]  # the projection actor (read models)
    http: Callable[[], httpx.AsyncClient] = shared_client  # the provider HTTP client
