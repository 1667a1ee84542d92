"""The resources of both clients (`client.agents`, `client.executions`, …). Each method
builds a `Call` (`_calls.py`) and hands it to the client's runner; the sync and async
classes differ only in `await`."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Literal

import httpx
from pydantic import BaseModel

from circuit_breaker import _calls as calls
from circuit_breaker._core import Call, Config, api_error
from circuit_breaker._sse import SSEMessage, SSEParser
from circuit_breaker._stream import AsyncStream, Stream, StreamRequest
from circuit_breaker._transport import AsyncRunner, SyncRunner
from circuit_breaker.errors import StreamError
from circuit_breaker.models import (
    Agent,
    AuditEntry,
    Budget,
    Execution,
    ExecutionPage,
    ExecutionResult,
    McpServer,
    ModelInfo,
    ModelMapping,
    Provider,
    Tool,
)

OnDisconnect = Literal["cancel", "continue"]


def _agent_body(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def _exec_body(
    prompt: str,
    context: Any,
    parameters: dict[str, Any] | None,
    metadata: dict[str, Any] | None,
    tools: list[str] | None,
    subject: str | None,
) -> dict[str, Any]:
    return _agent_body(
        prompt=prompt,
        context=context,
        parameters=parameters,
        metadata=metadata,
        tools=tools,
        subject=subject,
    )


def _stream_request(
    agent_id: str,
    body: dict[str, Any],
    *,
    resume: bool,
    on_disconnect: OnDisconnect | None,
    heartbeat_s: float | None,
    heartbeat_timeout: float | None,
    include_usage: bool | None,
    max_resumes: int,
) -> StreamRequest:
    # a resumable stream asks the server to run on when the connection drops (otherwise the
    # drop would cancel the execution before the SDK could resume it)
    options = _agent_body(
        on_disconnect=on_disconnect or ("continue" if resume else "cancel"),
        heartbeat_s=heartbeat_s,
        include_usage=include_usage,
    )
    return StreamRequest(
        "POST",
        f"/api/v1/agents/{calls.p(agent_id)}/execute/stream",
        json={**body, "stream_options": options},
        heartbeat_s=heartbeat_s,
        heartbeat_timeout=heartbeat_timeout,
        max_resumes=max_resumes if resume else 0,
    )


class _ModelCache:
    """`GET /api/v1/models` with its `ETag`: the list is kept, and asked for again with
    `If-None-Match`; a `304` keeps it."""

    def __init__(self) -> None:
        self.etag: str | None = None
        self.models: list[ModelInfo] = []
        self.revalidated = 0  # answers that were 304
        self._lock = threading.Lock()

    def call(self) -> Call[list[ModelInfo]]:
        headers = {"If-None-Match": self.etag} if self.etag else {}

        def parse(reply: httpx.Response) -> list[ModelInfo]:
            with self._lock:
                if reply.status_code == 304:
                    self.revalidated += 1
                    return list(self.models)
                self.models = [ModelInfo.model_validate(m) for m in reply.json()["models"]]
                self.etag = reply.headers.get("etag")
                return list(self.models)

        return Call("GET", "/api/v1/models", parse, headers=headers)


def _tenant_path(config: Config) -> str:
    if not config.tenant_id:
        raise ValueError("tenant_id is needed for the tenant's mappings and policy")
    return f"/api/v1/tenants/{calls.p(config.tenant_id)}"


def _set_mapping(
    config: Config, name: str, candidates: list[str], strategy: str, extra: dict[str, Any]
) -> Call[ModelMapping]:
    body = {"candidates": candidates, "strategy": strategy, **extra}
    path = f"{_tenant_path(config)}/model-mappings/{calls.p(name)}"
    return Call("PUT", path, lambda r: ModelMapping.model_validate(r.json()), json=body)


def _list_mappings(config: Config) -> Call[list[ModelMapping]]:
    return Call(
        "GET",
        f"{_tenant_path(config)}/model-mappings",
        lambda r: [ModelMapping.model_validate(m) for m in r.json()["mappings"]],
    )


def _delete_mapping(config: Config, name: str) -> Call[None]:
    path = f"{_tenant_path(config)}/model-mappings/{calls.p(name)}"
    return Call("DELETE", path, lambda r: None)


def _policy(config: Config, policy: dict[str, Any] | None) -> Call[dict[str, Any]]:
    path = f"{_tenant_path(config)}/model-policy"
    if policy is None:
        return Call("GET", path, lambda r: r.json())
    return Call("PUT", path, lambda r: r.json(), json=policy)


class BudgetEvent(BaseModel):
    """One event of the budget feed: `type` (`budget_set`, `budget_removed`,
    `budget_threshold_crossed`), its SSE `event_id`, and its `data`."""

    type: str
    event_id: int | None = None
    data: dict[str, Any] = {}


class _FeedState:
    def __init__(self, after: int) -> None:
        self.last = after
        self.resumes = 0

    def headers(self, config: Config) -> dict[str, str]:
        headers = {**config.auth_headers(), "Accept": "text/event-stream"}
        if self.last:
            headers["Last-Event-ID"] = str(self.last)
        return headers

    def accept(self, message: SSEMessage) -> BudgetEvent | None:
        eid = int(message.id) if message.id else None
        if eid is not None:
            if eid <= self.last:
                return None
            self.last = eid
        self.resumes = 0
        data = json.loads(message.data) if message.data else {}
        return BudgetEvent(type=message.event, event_id=eid, data=data)

    def dropped(self, exc: httpx.TransportError, max_resumes: int) -> None:
        self.resumes += 1
        if self.resumes > max_resumes:
            raise StreamError(f"the budget feed dropped {self.resumes} times: {exc!r}") from exc


def _feed_params(heartbeat_s: float | None) -> dict[str, Any] | None:
    return {"heartbeat_s": heartbeat_s} if heartbeat_s else None


def _feed_timeout(config: Config, heartbeat_s: float | None) -> httpx.Timeout:
    return httpx.Timeout(config.timeout, read=(heartbeat_s or 15.0) * 2 + 5.0)


# ====================================================================== sync


class Agents:
    """`client.agents`: create, get, list, update, delete, execute, stream."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def create(
        self,
        *,
        name: str,
        model: str | None = None,
        system_prompt: str | None = None,
        description: str | None = None,
        user_template: str | None = None,
        parameters: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        capabilities: list[str] | None = None,
        tags: list[str] | None = None,
        **extra: Any,
    ) -> Agent:
        """Create an agent (`POST /api/v1/agents`)."""
        body = _agent_body(
            name=name,
            model=model,
            system_prompt=system_prompt,
            description=description,
            user_template=user_template,
            parameters=parameters,
            tools=tools,
            capabilities=capabilities,
            tags=tags,
            **extra,
        )
        return self._r.run(calls.agent_create(body))

    def get(self, agent_id: str) -> Agent:
        return self._r.run(calls.agent_get(agent_id))

    def list(self) -> list[Agent]:
        return self._r.run(calls.agent_list())

    def update(self, agent_id: str, **changes: Any) -> Agent:
        """Change the given fields (`PATCH`): each change is a new version."""
        return self._r.run(calls.agent_update(agent_id, changes))

    def delete(self, agent_id: str) -> None:
        self._r.run(calls.agent_delete(agent_id))

    def execute(
        self,
        agent_id: str,
        *,
        prompt: str,
        context: Any = None,
        parameters: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        subject: str | None = None,
    ) -> ExecutionResult:
        """Run the agent once and return the whole result. `subject` names the data subject
        (the end user) the execution is about: see `client.subjects`."""
        body = _exec_body(prompt, context, parameters, metadata, tools, subject)
        return self._r.run(calls.agent_execute(agent_id, body))

    def stream(
        self,
        agent_id: str,
        *,
        prompt: str,
        context: Any = None,
        parameters: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        subject: str | None = None,
        resume: bool = True,
        on_disconnect: OnDisconnect | None = None,
        heartbeat_s: float | None = None,
        heartbeat_timeout: float | None = None,
        include_usage: bool | None = None,
        max_resumes: int = 5,
    ) -> Stream:
        """Run the agent streamed: an iterator of typed events (see `Stream`)."""
        body = _exec_body(prompt, context, parameters, metadata, tools, subject)
        req = _stream_request(
            agent_id,
            body,
            resume=resume,
            on_disconnect=on_disconnect,
            heartbeat_s=heartbeat_s,
            heartbeat_timeout=heartbeat_timeout,
            include_usage=include_usage,
            max_resumes=max_resumes,
        )
        return Stream(self._r.http, self._r.config, req)


class Executions:
    """`client.executions`: get, list, cancel, resume (a stream from an event id)."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def get(self, execution_id: str) -> Execution:
        return self._r.run(calls.execution_get(execution_id))

    def list(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        before: Any = None,
    ) -> ExecutionPage:
        """One page, newest first; pass `next_before` as `before` for the next."""
        params = {
            "agent_id": agent_id,
            "status": status,
            "kind": kind,
            "limit": limit,
            "before": before,
        }
        return self._r.run(calls.execution_list(params))

    def cancel(self, execution_id: str) -> Execution:
        """Cancel a running streamed execution (`POST /api/v1/executions/{id}/cancel`): its
        record, `cancelled`, once that is durable; every reader's stream ends with the
        cancellation and the provider call is cut. Again for one already cancelled gives the
        same; one that ended otherwise raises `ConflictError`."""
        return self._r.run(calls.execution_cancel(execution_id))

    def feedback(
        self,
        execution_id: str,
        score: float | bool,
        *,
        label: str | None = None,
        comment: str | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Score an ended execution in [0, 1] (`true`/`false` are 1 and 0): scope
        `executions:write`, or the key that started it. Not retried (each call is a score)."""
        body = _feedback(score, label, comment, source)
        return self._r.run(calls.execution_feedback(execution_id, body))

    def judge(self, execution_id: str, **spec: Any) -> dict[str, Any]:
        """Judge a completed execution now (`model`, `rubric`, `criteria`):
        `{"score", "reason", "judge"}` or `{"error", "judge"}`, recorded on it."""
        return self._r.run(calls.execution_judge(execution_id, spec))

    def resume(
        self,
        execution_id: str,
        *,
        last_event_id: int = 0,
        heartbeat_s: float | None = None,
        max_resumes: int = 5,
    ) -> Stream:
        """The execution's stream after `last_event_id`: replayed, then live while it runs."""
        req = StreamRequest(
            "GET",
            f"/api/v1/executions/{calls.p(execution_id)}/stream",
            params={"heartbeat_s": heartbeat_s} if heartbeat_s else None,
            execution_id=execution_id,
            last_event_id=last_event_id,
            heartbeat_s=heartbeat_s,
            max_resumes=max_resumes,
        )
        return Stream(self._r.http, self._r.config, req)


class Models:
    """`client.models`: the tenant's models (cached by `ETag`), its mappings and policy."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner
        self.cache = _ModelCache()

    def list(self) -> list[ModelInfo]:
        """Virtual names then concrete models; revalidated with `If-None-Match`."""
        return self._r.run(self.cache.call())

    def get(self, name: str) -> ModelInfo | None:
        """One model or virtual name of `list()`, or None."""
        return next((m for m in self.list() if m.id == name), None)

    def set_mapping(
        self, name: str, *, candidates: list[str], strategy: str = "balanced", **extra: Any
    ) -> ModelMapping:
        """The tenant's own mapping of a virtual name (`tenant:admin`)."""
        return self._r.run(_set_mapping(self._r.config, name, candidates, strategy, extra))

    def list_mappings(self) -> list[ModelMapping]:
        return self._r.run(_list_mappings(self._r.config))

    def delete_mapping(self, name: str) -> None:
        self._r.run(_delete_mapping(self._r.config, name))

    def get_policy(self) -> dict[str, Any]:
        """The tenant's model policy (allow-list, parameter defaults and caps)."""
        return self._r.run(_policy(self._r.config, None))

    def set_policy(self, **policy: Any) -> dict[str, Any]:
        return self._r.run(_policy(self._r.config, policy))


class Tools:
    """`client.tools`: the tools the tenant's agents may use."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def list(self) -> list[Tool]:
        return self._r.run(calls.tools_list())


class McpServers:
    """`client.mcp_servers`: register, list, refresh, delete."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def create(self, *, name: str, transport: str, **settings: Any) -> McpServer:
        return self._r.run(calls.mcp_create({"name": name, "transport": transport, **settings}))

    register = create

    def list(self) -> list[McpServer]:
        return self._r.run(calls.mcp_list())

    def refresh(self, server_id: str) -> dict[str, Any]:
        return self._r.run(calls.mcp_refresh(server_id))

    def delete(self, server_id: str) -> dict[str, Any]:
        return self._r.run(calls.mcp_delete(server_id))


class Analytics:
    """`client.analytics`: usage, models and errors (JSON, or CSV text with `format="csv"`)."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def usage(
        self,
        *,
        group_by: str | None = None,
        agent_id: str | None = None,
        model: str | None = None,
        start: Any = None,
        end: Any = None,
        format: str | None = None,  # noqa: A002
    ) -> Any:
        params = {
            "group_by": group_by,
            "agent_id": agent_id,
            "model": model,
            "from": start,
            "to": end,
            "format": format,
        }
        return self._r.run(calls.analytics("usage", params))

    def models(self, *, start: Any = None, end: Any = None, format: str | None = None) -> Any:  # noqa: A002
        return self._r.run(calls.analytics("models", {"from": start, "to": end, "format": format}))

    def errors(self, *, start: Any = None, end: Any = None, format: str | None = None) -> Any:  # noqa: A002
        return self._r.run(calls.analytics("errors", {"from": start, "to": end, "format": format}))


class Budgets:
    """`client.budgets`: set, get, list, delete (scope `tenant` or `agent:<id>`)."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def set(
        self,
        scope: str,
        *,
        limit_usd: float,
        period: str = "month",
        enforcement: str | None = None,
        thresholds: list[float] | None = None,
    ) -> Budget:
        body = _agent_body(
            limit_usd=limit_usd, period=period, enforcement=enforcement, thresholds=thresholds
        )
        return self._r.run(calls.budget_set(scope, body))

    def get(self, scope: str) -> Budget:
        return self._r.run(calls.budget_get(scope))

    def list(self) -> list[Budget]:
        return self._r.run(calls.budget_list())

    def delete(self, scope: str) -> dict[str, Any]:
        return self._r.run(calls.budget_delete(scope))

    def events(
        self, *, after: int | None = None, heartbeat_s: float | None = None, max_resumes: int = 5
    ) -> Iterator[BudgetEvent]:
        """The live feed of budget events (`budget_set`, `budget_removed`,
        `budget_threshold_crossed`), oldest first, after `after`; resumed with
        `Last-Event-ID` when the connection drops. It never ends: close it to stop."""
        state = _FeedState(after or 0)
        config, http = self._r.config, self._r.http
        while True:
            try:
                with http.stream(
                    "GET", "/api/v1/budgets/events", params=_feed_params(heartbeat_s),
                    headers=state.headers(config), timeout=_feed_timeout(config, heartbeat_s),
                ) as response:  # fmt: skip
                    if response.status_code >= 400:
                        response.read()
                        raise api_error(response)
                    parser = SSEParser()
                    for text in response.iter_text():
                        for message in parser.feed(text):
                            event = state.accept(message)
                            if event is not None:
                                yield event
            except httpx.TransportError as exc:
                state.dropped(exc, max_resumes)
                time.sleep(config.retry.wait(state.resumes - 1))


class Audit:
    """`client.audit`: the tenant's audit trail (`tenant:admin`)."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def list(
        self,
        *,
        kind: str | list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        params = {"kind": kind, "since": since, "until": until, "limit": limit}
        return self._r.run(calls.audit_list(params))


class Providers:
    """`client.providers`: the configured providers and their health."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def list(self) -> list[Provider]:
        return self._r.run(calls.providers_list())


class Subjects:
    """`client.subjects`: one data subject's executions, listed, exported or erased
    (`tenant:admin`). The subject is the id sent as `subject` (or OpenAI's `user`)."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def list(self, subject: str) -> dict[str, Any]:
        """`{"subject_ref", "executions": [...]}`: its executions as history shows them,
        with their `input`, newest first (`"payload": "erased"` once erased)."""
        return self._r.run(calls.subject_list(subject))

    def export(self, subject: str) -> list[dict[str, Any]]:
        """Everything held about the subject, the export's JSON lines parsed: each execution
        (`{"kind": "execution", "data"}`), then each event of them (`{"kind": "event", …}`)."""
        return self._r.run(calls.subject_export(subject))

    def erase(self, subject: str) -> dict[str, Any]:
        """Destroy the subject's payload keys: `{"subject_ref", "executions",
        "keys_destroyed"}`. Its prompts and answers are unreadable everywhere from then on."""
        return self._r.run(calls.subject_erase(subject))


class Retention:
    """`client.retention`: how long the tenant's payloads and metrics are kept
    (`tenant:admin`); each answers `{"retention": None | {"payload_days", "metrics_days"}}`."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def get(self) -> dict[str, Any]:
        return self._r.run(calls.retention_get())

    def set(self, payload_days: int, metrics_days: int | None = None) -> dict[str, Any]:
        """Keep payloads `payload_days` days, and executions `metrics_days` days (None:
        forever); for executions started from now on."""
        body = {"payload_days": payload_days, "metrics_days": metrics_days}
        return self._r.run(calls.retention_set(body))

    def clear(self) -> dict[str, Any]:
        """Keep everything again (what was already swept stays gone)."""
        return self._r.run(calls.retention_clear())


class Judge:
    """`client.judge`: the tenant's default judge (`agents:write` to change); each answers
    `{"judge": None | {"model", "rubric", "criteria", "sample_rate"}}`."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def get(self) -> dict[str, Any]:
        return self._r.run(calls.judge_get())

    def set(self, model: str, **spec: Any) -> dict[str, Any]:
        """Judge a `sample_rate` share of executions whose agent names no judge."""
        return self._r.run(calls.judge_set({"model": model, **spec}))

    def clear(self) -> dict[str, Any]:
        return self._r.run(calls.judge_clear())


class Experiments:
    """`client.experiments`: replay recorded executions on other models or agents."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def create(
        self, *, name: str, source: dict[str, Any], variants: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        """Start one (`judge`, `budget_usd`, `concurrency` in `extra`); it runs in the
        background: `get` or `wait` for its report."""
        body = {"name": name, "source": source, "variants": variants, **extra}
        return self._r.run(calls.experiment_create(body))

    def get(self, experiment_id: str) -> dict[str, Any]:
        return self._r.run(calls.experiment_get(experiment_id))

    def list(self) -> list[dict[str, Any]]:
        return self._r.run(calls.experiment_list())

    def cancel(self, experiment_id: str) -> dict[str, Any]:
        return self._r.run(calls.experiment_cancel(experiment_id))

    def wait(self, experiment_id: str, *, timeout_s: float = 600, poll_s: float = 1.0) -> dict:
        """Its report once it has ended (TimeoutError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while (found := self.get(experiment_id))["status"] == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still running")
            time.sleep(poll_s)
        return found


class Collaborations:
    """`client.collaborations`: saved DAGs of agent steps, and their runs."""

    def __init__(self, runner: SyncRunner) -> None:
        self._r = runner

    def create(self, **definition: Any) -> dict[str, Any]:
        """Save a definition (`name`, `steps`, `inputs`, `output`, `description`)."""
        return self._r.run(calls.collaboration_create(definition))

    def get(self, collaboration_id: str) -> dict[str, Any]:
        return self._r.run(calls.collaboration_get(collaboration_id))

    def list(self) -> list[dict[str, Any]]:
        return self._r.run(calls.collaboration_list())

    def update(self, collaboration_id: str, **changes: Any) -> dict[str, Any]:
        """A new version with these fields changed."""
        return self._r.run(calls.collaboration_update(collaboration_id, changes))

    def delete(self, collaboration_id: str) -> dict[str, Any]:
        return self._r.run(calls.collaboration_delete(collaboration_id))

    def run(
        self,
        collaboration_id: str | None = None,
        *,
        inputs: dict[str, Any] | None = None,
        definition: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run a saved collaboration (or `definition`, inline) and wait for its end."""
        body = _run_body(collaboration_id, inputs, definition)
        return self._r.run(calls.collaboration_run(collaboration_id, body))

    def get_run(self, run_id: str) -> dict[str, Any]:
        return self._r.run(calls.run_get(run_id))

    def list_runs(
        self, *, status: str | None = None, collaboration_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        params = {"status": status, "collaboration_id": collaboration_id, "limit": limit}
        return self._r.run(calls.run_list(params))

    def cancel_run(self, run_id: str) -> dict[str, Any]:
        return self._r.run(calls.run_cancel(run_id))


# ====================================================================== async


class AsyncAgents:
    """`client.agents` of `AsyncClient`."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def create(
        self,
        *,
        name: str,
        model: str | None = None,
        system_prompt: str | None = None,
        description: str | None = None,
        user_template: str | None = None,
        parameters: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        capabilities: list[str] | None = None,
        tags: list[str] | None = None,
        **extra: Any,
    ) -> Agent:
        body = _agent_body(
            name=name,
            model=model,
            system_prompt=system_prompt,
            description=description,
            user_template=user_template,
            parameters=parameters,
            tools=tools,
            capabilities=capabilities,
            tags=tags,
            **extra,
        )
        return await self._r.run(calls.agent_create(body))

    async def get(self, agent_id: str) -> Agent:
        return await self._r.run(calls.agent_get(agent_id))

    async def list(self) -> list[Agent]:
        return await self._r.run(calls.agent_list())

    async def update(self, agent_id: str, **changes: Any) -> Agent:
        return await self._r.run(calls.agent_update(agent_id, changes))

    async def delete(self, agent_id: str) -> None:
        await self._r.run(calls.agent_delete(agent_id))

    async def execute(
        self,
        agent_id: str,
        *,
        prompt: str,
        context: Any = None,
        parameters: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        subject: str | None = None,
    ) -> ExecutionResult:
        body = _exec_body(prompt, context, parameters, metadata, tools, subject)
        return await self._r.run(calls.agent_execute(agent_id, body))

    def stream(
        self,
        agent_id: str,
        *,
        prompt: str,
        context: Any = None,
        parameters: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        tools: list[str] | None = None,
        subject: str | None = None,
        resume: bool = True,
        on_disconnect: OnDisconnect | None = None,
        heartbeat_s: float | None = None,
        heartbeat_timeout: float | None = None,
        include_usage: bool | None = None,
        max_resumes: int = 5,
    ) -> AsyncStream:
        """An async iterator of typed events (`async for ev in client.agents.stream(…)`)."""
        body = _exec_body(prompt, context, parameters, metadata, tools, subject)
        req = _stream_request(
            agent_id,
            body,
            resume=resume,
            on_disconnect=on_disconnect,
            heartbeat_s=heartbeat_s,
            heartbeat_timeout=heartbeat_timeout,
            include_usage=include_usage,
            max_resumes=max_resumes,
        )
        return AsyncStream(self._r.http, self._r.config, req)


class AsyncExecutions:
    """`client.executions` of `AsyncClient`."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def get(self, execution_id: str) -> Execution:
        return await self._r.run(calls.execution_get(execution_id))

    async def list(
        self,
        *,
        agent_id: str | None = None,
        status: str | None = None,
        kind: str | None = None,
        limit: int | None = None,
        before: Any = None,
    ) -> ExecutionPage:
        params = {
            "agent_id": agent_id,
            "status": status,
            "kind": kind,
            "limit": limit,
            "before": before,
        }
        return await self._r.run(calls.execution_list(params))

    async def cancel(self, execution_id: str) -> Execution:
        """Cancel a running streamed execution (see `Executions.cancel`)."""
        return await self._r.run(calls.execution_cancel(execution_id))

    async def feedback(
        self,
        execution_id: str,
        score: float | bool,
        *,
        label: str | None = None,
        comment: str | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """Score an ended execution in [0, 1] (`true`/`false` are 1 and 0): scope
        `executions:write`, or the key that started it. Not retried (each call is a score)."""
        body = _feedback(score, label, comment, source)
        return await self._r.run(calls.execution_feedback(execution_id, body))

    async def judge(self, execution_id: str, **spec: Any) -> dict[str, Any]:
        """Judge a completed execution now (`model`, `rubric`, `criteria`):
        `{"score", "reason", "judge"}` or `{"error", "judge"}`, recorded on it."""
        return await self._r.run(calls.execution_judge(execution_id, spec))

    def resume(
        self,
        execution_id: str,
        *,
        last_event_id: int = 0,
        heartbeat_s: float | None = None,
        max_resumes: int = 5,
    ) -> AsyncStream:
        req = StreamRequest(
            "GET",
            f"/api/v1/executions/{calls.p(execution_id)}/stream",
            params={"heartbeat_s": heartbeat_s} if heartbeat_s else None,
            execution_id=execution_id,
            last_event_id=last_event_id,
            heartbeat_s=heartbeat_s,
            max_resumes=max_resumes,
        )
        return AsyncStream(self._r.http, self._r.config, req)


class AsyncModels:
    """`client.models` of `AsyncClient` (same `ETag` cache)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner
        self.cache = _ModelCache()

    async def list(self) -> list[ModelInfo]:
        return await self._r.run(self.cache.call())

    async def get(self, name: str) -> ModelInfo | None:
        return next((m for m in await self.list() if m.id == name), None)

    async def set_mapping(
        self, name: str, *, candidates: list[str], strategy: str = "balanced", **extra: Any
    ) -> ModelMapping:
        return await self._r.run(_set_mapping(self._r.config, name, candidates, strategy, extra))

    async def list_mappings(self) -> list[ModelMapping]:
        return await self._r.run(_list_mappings(self._r.config))

    async def delete_mapping(self, name: str) -> None:
        await self._r.run(_delete_mapping(self._r.config, name))

    async def get_policy(self) -> dict[str, Any]:
        return await self._r.run(_policy(self._r.config, None))

    async def set_policy(self, **policy: Any) -> dict[str, Any]:
        return await self._r.run(_policy(self._r.config, policy))


class AsyncTools:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def list(self) -> list[Tool]:
        return await self._r.run(calls.tools_list())


class AsyncMcpServers:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def create(self, *, name: str, transport: str, **settings: Any) -> McpServer:
        body = {"name": name, "transport": transport, **settings}
        return await self._r.run(calls.mcp_create(body))

    register = create

    async def list(self) -> list[McpServer]:
        return await self._r.run(calls.mcp_list())

    async def refresh(self, server_id: str) -> dict[str, Any]:
        return await self._r.run(calls.mcp_refresh(server_id))

    async def delete(self, server_id: str) -> dict[str, Any]:
        return await self._r.run(calls.mcp_delete(server_id))


class AsyncBudgets:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def set(
        self,
        scope: str,
        *,
        limit_usd: float,
        period: str = "month",
        enforcement: str | None = None,
        thresholds: list[float] | None = None,
    ) -> Budget:
        body = _agent_body(
            limit_usd=limit_usd, period=period, enforcement=enforcement, thresholds=thresholds
        )
        return await self._r.run(calls.budget_set(scope, body))

    async def get(self, scope: str) -> Budget:
        return await self._r.run(calls.budget_get(scope))

    async def list(self) -> list[Budget]:
        return await self._r.run(calls.budget_list())

    async def delete(self, scope: str) -> dict[str, Any]:
        return await self._r.run(calls.budget_delete(scope))

    async def events(
        self, *, after: int | None = None, heartbeat_s: float | None = None, max_resumes: int = 5
    ) -> AsyncIterator[BudgetEvent]:
        """The live feed of budget events, resumed when the connection drops."""
        state = _FeedState(after or 0)
        config, http = self._r.config, self._r.http
        while True:
            try:
                async with http.stream(
                    "GET", "/api/v1/budgets/events", params=_feed_params(heartbeat_s),
                    headers=state.headers(config), timeout=_feed_timeout(config, heartbeat_s),
                ) as response:  # fmt: skip
                    if response.status_code >= 400:
                        await response.aread()
                        raise api_error(response)
                    parser = SSEParser()
                    async for text in response.aiter_text():
                        for message in parser.feed(text):
                            event = state.accept(message)
                            if event is not None:
                                yield event
            except httpx.TransportError as exc:
                state.dropped(exc, max_resumes)
                await asyncio.sleep(config.retry.wait(state.resumes - 1))


class AsyncAudit:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def list(
        self,
        *,
        kind: str | list[str] | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        params = {"kind": kind, "since": since, "until": until, "limit": limit}
        return await self._r.run(calls.audit_list(params))


class AsyncAnalytics:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def usage(
        self,
        *,
        group_by: str | None = None,
        agent_id: str | None = None,
        model: str | None = None,
        start: Any = None,
        end: Any = None,
        format: str | None = None,  # noqa: A002
    ) -> Any:
        params = {
            "group_by": group_by,
            "agent_id": agent_id,
            "model": model,
            "from": start,
            "to": end,
            "format": format,
        }
        return await self._r.run(calls.analytics("usage", params))

    async def models(self, *, start: Any = None, end: Any = None, format: str | None = None) -> Any:  # noqa: A002
        return await self._r.run(
            calls.analytics("models", {"from": start, "to": end, "format": format})
        )

    async def errors(self, *, start: Any = None, end: Any = None, format: str | None = None) -> Any:  # noqa: A002
        return await self._r.run(
            calls.analytics("errors", {"from": start, "to": end, "format": format})
        )


class AsyncProviders:
    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def list(self) -> list[Provider]:
        return await self._r.run(calls.providers_list())


class AsyncSubjects:
    """`client.subjects` of `AsyncClient` (see `Subjects`)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def list(self, subject: str) -> dict[str, Any]:
        return await self._r.run(calls.subject_list(subject))

    async def export(self, subject: str) -> list[dict[str, Any]]:
        return await self._r.run(calls.subject_export(subject))

    async def erase(self, subject: str) -> dict[str, Any]:
        return await self._r.run(calls.subject_erase(subject))


class AsyncRetention:
    """`client.retention` of `AsyncClient` (see `Retention`)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def get(self) -> dict[str, Any]:
        return await self._r.run(calls.retention_get())

    async def set(self, payload_days: int, metrics_days: int | None = None) -> dict[str, Any]:
        body = {"payload_days": payload_days, "metrics_days": metrics_days}
        return await self._r.run(calls.retention_set(body))

    async def clear(self) -> dict[str, Any]:
        return await self._r.run(calls.retention_clear())


class AsyncJudge:
    """`client.judge` of `AsyncClient` (see `Judge`)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def get(self) -> dict[str, Any]:
        return await self._r.run(calls.judge_get())

    async def set(self, model: str, **spec: Any) -> dict[str, Any]:
        """Judge a `sample_rate` share of executions whose agent names no judge."""
        return await self._r.run(calls.judge_set({"model": model, **spec}))

    async def clear(self) -> dict[str, Any]:
        return await self._r.run(calls.judge_clear())


class AsyncExperiments:
    """`client.experiments` of `AsyncClient` (see `Experiments`)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def create(
        self, *, name: str, source: dict[str, Any], variants: list[dict[str, Any]], **extra: Any
    ) -> dict[str, Any]:
        """Start one (`judge`, `budget_usd`, `concurrency` in `extra`); it runs in the
        background: `get` or `wait` for its report."""
        body = {"name": name, "source": source, "variants": variants, **extra}
        return await self._r.run(calls.experiment_create(body))

    async def get(self, experiment_id: str) -> dict[str, Any]:
        return await self._r.run(calls.experiment_get(experiment_id))

    async def list(self) -> list[dict[str, Any]]:
        return await self._r.run(calls.experiment_list())

    async def cancel(self, experiment_id: str) -> dict[str, Any]:
        return await self._r.run(calls.experiment_cancel(experiment_id))

    async def wait(
        self, experiment_id: str, *, timeout_s: float = 600, poll_s: float = 1.0
    ) -> dict:
        """Its report once it has ended (TimeoutError after `timeout_s`)."""
        deadline = time.monotonic() + timeout_s
        while (found := await self.get(experiment_id))["status"] == "running":
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still running")
            await asyncio.sleep(poll_s)
        return found


class AsyncCollaborations:
    """`client.collaborations` of `AsyncClient` (see `Collaborations`)."""

    def __init__(self, runner: AsyncRunner) -> None:
        self._r = runner

    async def create(self, **definition: Any) -> dict[str, Any]:
        return await self._r.run(calls.collaboration_create(definition))

    async def get(self, collaboration_id: str) -> dict[str, Any]:
        return await self._r.run(calls.collaboration_get(collaboration_id))

    async def list(self) -> list[dict[str, Any]]:
        return await self._r.run(calls.collaboration_list())

    async def update(self, collaboration_id: str, **changes: Any) -> dict[str, Any]:
        return await self._r.run(calls.collaboration_update(collaboration_id, changes))

    async def delete(self, collaboration_id: str) -> dict[str, Any]:
        return await self._r.run(calls.collaboration_delete(collaboration_id))

    async def run(
        self,
        collaboration_id: str | None = None,
        *,
        inputs: dict[str, Any] | None = None,
        definition: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = _run_body(collaboration_id, inputs, definition)
        return await self._r.run(calls.collaboration_run(collaboration_id, body))

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return await self._r.run(calls.run_get(run_id))

    async def list_runs(
        self, *, status: str | None = None, collaboration_id: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        params = {"status": status, "collaboration_id": collaboration_id, "limit": limit}
        return await self._r.run(calls.run_list(params))

    async def cancel_run(self, run_id: str) -> dict[str, Any]:
        return await self._r.run(calls.run_cancel(run_id))


def _run_body(
    collaboration_id: str | None, inputs: dict[str, Any] | None, definition: dict[str, Any] | None
) -> dict[str, Any]:
    if (collaboration_id is None) == (definition is None):
        raise ValueError("give a saved collaboration's id or an inline definition")
    body: dict[str, Any] = {"inputs": inputs or {}}
    if definition is not None:
        body["definition"] = definition
    return body


def _feedback(
    score: float | bool, label: str | None, comment: str | None, source: str | None
) -> dict[str, Any]:
    given = {"label": label, "comment": comment, "source": source}
    return {"score": score, **{k: v for k, v in given.items() if v is not None}}
