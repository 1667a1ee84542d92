"""The execution loop inside a tenant actor: record, resolve, call, account, record."""

from __future__ import annotations

import time
import uuid
from typing import Any

from eventsourcing.application import AggregateNotFoundError

from actors import registry
from actors.event_store import AsyncEventStore
from actors.model_calls import CallOutcome, ModelCaller
from actors.settings import Settings, configured_providers
from domain.agent import Agent
from domain.catalog import Catalog
from domain.errors import CBError, ExecutionInterrupted
from domain.execution import Execution
from domain.pricing import cost_usd
from domain.prompting import build_messages
from domain.routing import Route, resolve


class ExecutionRunner:
    """Two store writes per execution: Started+ModelResolved before the call, the end after."""

    def __init__(
        self, settings: Settings, catalog: Catalog, store: AsyncEventStore, tenant_id: str
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.tenant_id = tenant_id
        self.caller = ModelCaller(settings, catalog)
        self.providers = configured_providers(catalog)

    def check_model(self, model: str) -> None:
        """Reject an agent whose model name resolves to nothing in the catalog."""
        resolve(model, self.catalog, self.catalog.providers.keys())

    def _route(self, model: str) -> Route:
        return resolve(model, self.catalog, self.providers)

    async def fail_interrupted(self) -> int:
        """Record as failed every execution a previous incarnation of this actor left running.

        Only this tenant's actor runs its executions, so at its start none can be live.
        """
        running = await registry.projection_actor(self.settings).list_executions.remote(
            self.tenant_id, {"status": "running", "limit": 500}
        )
        for row in running:
            execution = await self.store.run(
                self.store.app.repository.get, uuid.UUID(row["execution_id"])
            )
            if execution.status != "running":
                continue
            error = ExecutionInterrupted(
                "the tenant's runtime stopped before the execution finished",
                execution_id=row["execution_id"],
            ).to_dict()
            result = {**_result_shell(execution, execution.model_requested, {}), "error": error}
            result["status"] = "failed"
            execution.fail(error, result)
            await self.store.save(execution)
        return len(running)

    async def raise_if_recorded(self, execution_id: str) -> None:
        """A retried call whose execution already started: report it, never run it again."""
        try:
            execution = await self.store.run(self.store.app.repository.get, uuid.UUID(execution_id))
        except AggregateNotFoundError:
            return
        raise ExecutionInterrupted(
            f"execution {execution_id} was interrupted ({execution.status}); not rerun",
            execution_id=execution_id,
        )

    async def run(self, agent: Agent, body: dict[str, Any], execution_id: str) -> dict[str, Any]:
        definition = agent.definition
        started = time.perf_counter()
        execution = Execution(
            id=uuid.UUID(execution_id),
            tenant_id=self.tenant_id,
            agent_id=str(agent.id),
            agent_version=agent.version,
            request=body,
            model_requested=definition["model"],
            stream=False,
        )
        result = _result_shell(execution, definition["model"], body)
        try:
            route = self._route(definition["model"])
        except CBError as err:
            return await self._fail(execution, result, err, started)
        first = route.chain[0]
        execution.resolve_model(first, self.catalog.models[first].provider, route.explain())
        result["metadata"]["routing"] = route.explain()
        await self.store.save(execution)
        start_write_ms = _ms_since(started)
        parameters = {**definition.get("parameters", {}), **body.get("parameters", {})}
        messages = build_messages(definition, body["prompt"], body.get("context"))
        try:
            outcome = await self.caller.complete(route, messages, parameters)
        except CBError as err:
            attempts = (err.details or {}).get("attempts", [])
            result["metadata"]["attempts"] = len(attempts)
            result["metadata"]["attempt_log"] = attempts
            return await self._fail(execution, result, err, started)
        self._fill(result, outcome, route, started)
        result["metadata"]["timings_ms"] = _timings(start_write_ms, outcome.attempts)
        execution.complete(result)
        finishing = time.perf_counter()
        await self.store.save(execution)
        # only the live answer knows how long its own recording took
        result["metadata"]["timings_ms"]["finish_write"] = _ms_since(finishing)
        return result

    def _fill(
        self, result: dict[str, Any], outcome: CallOutcome, route: Route, started: float
    ) -> None:
        response = outcome.response
        assert response is not None and outcome.model is not None
        usage = response.usage
        model = self.catalog.models[outcome.model]
        result["status"] = "completed"
        result["response"] = {
            "content": response.content,
            "tool_calls": response.tool_calls,
            "finish_reason": response.finish_reason,
        }
        result["usage"] = {
            **usage.model_dump(),
            "cost_usd": cost_usd(model, usage.prompt_tokens, usage.completion_tokens),
        }
        meta = result["metadata"]
        meta.update(
            model_resolved=outcome.model,
            provider=outcome.provider,
            provider_model=response.provider_model,
            attempts=len(outcome.attempts),
            attempt_log=outcome.attempts,
            fallback_used=outcome.model != route.chain[0],
            dropped_parameters=outcome.dropped_parameters,
            adjusted_parameters=outcome.adjusted_parameters,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
        )

    async def _fail(
        self, execution: Execution, result: dict[str, Any], err: CBError, started: float
    ) -> dict[str, Any]:
        err.execution_id = str(execution.id)
        error = {"type": err.type, "message": err.message, "execution_id": str(execution.id)}
        result["status"] = "failed"
        result["error"] = error
        result["metadata"]["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        execution.fail(error, result)
        await self.store.save(execution)
        raise err


def _ms_since(mark: float) -> float:
    return round((time.perf_counter() - mark) * 1000, 3)


def _timings(start_write_ms: float, attempts: list[dict[str, Any]]) -> dict[str, float]:
    """Where an execution's time went inside its tenant actor."""
    return {
        "start_write": start_write_ms,
        "permit": round(sum(a.get("permit_ms", 0) for a in attempts), 3),
        "provider": round(sum(a.get("latency_ms", 0) for a in attempts), 3),
    }


def _result_shell(execution: Execution, model: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "execution_id": str(execution.id),
        "agent_id": execution.agent_id,
        "status": "running",
        "response": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "cost_usd": 0.0},
        "metadata": {
            "model_requested": model,
            "model_resolved": None,
            "provider": None,
            "attempts": 0,
            "request_metadata": body.get("metadata") or {},
        },
        "error": None,
    }
