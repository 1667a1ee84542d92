"""`Client` and `AsyncClient`: one configuration, the resources, and the surface in use."""

from __future__ import annotations

import os
import ssl
from dataclasses import replace
from typing import Any

import httpx

from circuit_breaker import _calls as calls
from circuit_breaker._core import ApiKey, Config, Mode, tls_context
from circuit_breaker._resources import (
    Agents,
    Analytics,
    AsyncAgents,
    AsyncAnalytics,
    AsyncAudit,
    AsyncBudgets,
    AsyncCollaborations,
    AsyncExecutions,
    AsyncExperiments,
    AsyncJudge,
    AsyncMcpServers,
    AsyncModels,
    AsyncProviders,
    AsyncRetention,
    AsyncSubjects,
    AsyncTools,
    Audit,
    Budgets,
    Collaborations,
    Executions,
    Experiments,
    Judge,
    McpServers,
    Models,
    Providers,
    Retention,
    Subjects,
    Tools,
)
from circuit_breaker._transport import AsyncRunner, SyncRunner
from circuit_breaker.graphql import AsyncGraphQL, GraphQL


class _ClientBase:
    _runner: SyncRunner | AsyncRunner

    @property
    def config(self) -> Config:
        return self._runner.config

    @property
    def mode(self) -> str:
        """The surface the operations both offer go over now: "rest" or "graphql"."""
        return self._runner.failover.current

    @property
    def pinned_mode(self) -> str:
        """What was asked for: "auto", "rest" or "graphql"."""
        return self._runner.failover.pinned

    @property
    def failovers(self) -> list[tuple[str, str]]:
        """Each switch of surface, oldest first: (surface, why)."""
        return list(self._runner.failover.switches)


class Client(_ClientBase):
    """The synchronous client.

    `base_url`, `tenant_id` and `api_key` default to `CB_BASE_URL`, `CB_TENANT_ID` and
    `CB_API_KEY`; `api_key` may be a callable returning a fresh token (a JWT) per request.
    `mode="auto"` sends operations both surfaces offer over REST and fails over to GraphQL
    (and back); `"rest"` or `"graphql"` pins one. `verify` is a CA file (PEM) or an
    `ssl.SSLContext` for an https gateway whose certificate the system does not trust.
    `transport` or `http_client` replace the httpx transport or client (tests, proxies)."""

    def __init__(
        self,
        base_url: str | None = None,
        tenant_id: str | None = None,
        api_key: ApiKey | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        mode: Mode = "auto",
        failover_cooldown: float = 30.0,
        headers: dict[str, str] | None = None,
        verify: ssl.SSLContext | str | os.PathLike[str] | bool = True,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        config = Config.build(base_url, tenant_id, api_key, timeout, max_retries, mode,
                              failover_cooldown, headers)  # fmt: skip
        config = replace(config, ssl_context=tls_context(verify))
        self._own_http = http_client is None
        http = http_client or httpx.Client(
            base_url=config.base_url,
            timeout=config.timeout,
            transport=transport,
            verify=config.ssl_context or True,
        )
        self._runner = SyncRunner(config, http)
        self.agents = Agents(self._runner)
        self.executions = Executions(self._runner)
        self.models = Models(self._runner)
        self.tools = Tools(self._runner)
        self.mcp_servers = McpServers(self._runner)
        self.analytics = Analytics(self._runner)
        self.budgets = Budgets(self._runner)
        self.audit = Audit(self._runner)
        self.providers = Providers(self._runner)
        self.subjects = Subjects(self._runner)
        self.retention = Retention(self._runner)
        self.judge = Judge(self._runner)
        self.experiments = Experiments(self._runner)
        self.collaborations = Collaborations(self._runner)
        self.graphql = GraphQL(self._runner)

    def chat_completion(self, **body: Any) -> dict[str, Any]:
        """`POST /v1/chat/completions` (OpenAI's body and answer)."""
        return self._runner.run(calls.chat_completion(body))

    def close(self) -> None:
        if self._own_http:
            self._runner.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(_ClientBase):
    """The asynchronous client: the same resources (and options, `verify` included), each
    method awaited, streams as async iterators."""

    def __init__(
        self,
        base_url: str | None = None,
        tenant_id: str | None = None,
        api_key: ApiKey | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        mode: Mode = "auto",
        failover_cooldown: float = 30.0,
        headers: dict[str, str] | None = None,
        verify: ssl.SSLContext | str | os.PathLike[str] | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        config = Config.build(base_url, tenant_id, api_key, timeout, max_retries, mode,
                              failover_cooldown, headers)  # fmt: skip
        config = replace(config, ssl_context=tls_context(verify))
        self._own_http = http_client is None
        http = http_client or httpx.AsyncClient(
            base_url=config.base_url,
            timeout=config.timeout,
            transport=transport,
            verify=config.ssl_context or True,
        )
        self._runner = AsyncRunner(config, http)
        self.agents = AsyncAgents(self._runner)
        self.executions = AsyncExecutions(self._runner)
        self.models = AsyncModels(self._runner)
        self.tools = AsyncTools(self._runner)
        self.mcp_servers = AsyncMcpServers(self._runner)
        self.analytics = AsyncAnalytics(self._runner)
        self.budgets = AsyncBudgets(self._runner)
        self.audit = AsyncAudit(self._runner)
        self.providers = AsyncProviders(self._runner)
        self.subjects = AsyncSubjects(self._runner)
        self.retention = AsyncRetention(self._runner)
        self.judge = AsyncJudge(self._runner)
        self.experiments = AsyncExperiments(self._runner)
        self.collaborations = AsyncCollaborations(self._runner)
        self.graphql = AsyncGraphQL(self._runner)

    async def chat_completion(self, **body: Any) -> dict[str, Any]:
        return await self._runner.run(calls.chat_completion(body))

    async def aclose(self) -> None:
        if self._own_http:
            await self._runner.http.aclose()

    close = aclose

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
