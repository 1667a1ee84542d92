"""The request loops: retries with backoff, and failover between REST and GraphQL. The
decisions are `_core`'s; these two classes only send and sleep (sync and async)."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal, TypeVar

import httpx

from circuit_breaker._core import (
    Call,
    Config,
    Failover,
    Step,
    SurfaceDown,
    graphql_step,
    rest_step,
)

T = TypeVar("T")
Surface = Literal["rest", "graphql"]


def _other(surface: Surface) -> Surface:
    return "graphql" if surface == "rest" else "rest"


def _gql_json(call: Call[Any]) -> dict[str, Any]:
    assert call.graphql is not None
    return {"query": call.graphql.query, "variables": call.graphql.variables}


class SyncRunner:
    """Sends `Call`s with an `httpx.Client`."""

    def __init__(self, config: Config, http: httpx.Client) -> None:
        self.config = config
        self.http = http
        self.failover = Failover(config.mode, config.failover_cooldown)

    def send(self, call: Call[Any], surface: Surface) -> httpx.Response:
        headers = {**self.config.auth_headers(), **call.headers}
        if surface == "graphql":
            return self.http.post("/graphql", json=_gql_json(call), headers=headers)
        return self.http.request(
            call.method, call.path, json=call.json, params=call.clean_params(), headers=headers
        )

    def _on(self, call: Call[T], surface: Surface, switchable: bool) -> T:
        step_of = graphql_step if surface == "graphql" else rest_step
        attempt = 0
        while True:
            reply: httpx.Response | None = None
            exc: BaseException | None = None
            try:
                reply = self.send(call, surface)
            except httpx.TransportError as err:
                exc = err
            step: Step = step_of(call, reply, exc, attempt, self.config.retry, switchable)
            if step.done:
                return step.value
            if step.error is not None:
                raise step.error
            time.sleep(step.wait or 0)
            attempt += 1

    def run_on(self, call: Call[T], surface: Surface) -> T:
        """Send `call` on `surface` only (no failover), with retries."""
        return self._on(call, surface, False)

    def run(self, call: Call[T]) -> T:
        """Send `call` on the surface in use, failing over once when that surface is down."""
        surface = self.failover.surface_for(call)
        switchable = self.failover.can_switch(call)
        try:
            value = self._on(call, surface, switchable)
        except SurfaceDown as down:
            if not down.safe:
                raise down.error from None
            other = _other(surface)
            value = self._on(call, other, False)
            self.failover.use(other, f"{surface} down: {down.error}")
            return value
        if switchable:
            self.failover.use(surface)
        return value


class AsyncRunner:
    """Sends `Call`s with an `httpx.AsyncClient`."""

    def __init__(self, config: Config, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self.failover = Failover(config.mode, config.failover_cooldown)

    async def send(self, call: Call[Any], surface: Surface) -> httpx.Response:
        headers = {**self.config.auth_headers(), **call.headers}
        if surface == "graphql":
            return await self.http.post("/graphql", json=_gql_json(call), headers=headers)
        return await self.http.request(
            call.method, call.path, json=call.json, params=call.clean_params(), headers=headers
        )

    async def _on(self, call: Call[T], surface: Surface, switchable: bool) -> T:
        step_of = graphql_step if surface == "graphql" else rest_step
        attempt = 0
        while True:
            reply: httpx.Response | None = None
            exc: BaseException | None = None
            try:
                reply = await self.send(call, surface)
            except httpx.TransportError as err:
                exc = err
            step: Step = step_of(call, reply, exc, attempt, self.config.retry, switchable)
            if step.done:
                return step.value
            if step.error is not None:
                raise step.error
            await asyncio.sleep(step.wait or 0)
            attempt += 1

    async def run_on(self, call: Call[T], surface: Surface) -> T:
        """Send `call` on `surface` only (no failover), with retries."""
        return await self._on(call, surface, False)

    async def run(self, call: Call[T]) -> T:
        """Send `call` on the surface in use, failing over once when that surface is down."""
        surface = self.failover.surface_for(call)
        switchable = self.failover.can_switch(call)
        try:
            value = await self._on(call, surface, switchable)
        except SurfaceDown as down:
            if not down.safe:
                raise down.error from None
            other = _other(surface)
            value = await self._on(call, other, False)
            self.failover.use(other, f"{surface} down: {down.error}")
            return value
        if switchable:
            self.failover.use(surface)
        return value
