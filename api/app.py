"""Builds the FastAPI application: routers, error handlers, GraphQL, and its state."""

from __future__ import annotations

import os

from fastapi import FastAPI

from api import errors
from api.admission import Admission, RefusalShortcut, watch_ingress
from api.fast_lane import FastLane
from api.graphql.schema import graphql_router
from api.request_metrics import RequestMetrics
from api.routes import (
    admin,
    admin_config,
    agents,
    analytics,
    audit,
    budgets,
    cache,
    chat_completions,
    collaborations,
    console,
    deprecations,
    docs_ui,
    executions,
    experiments,
    export,
    health,
    metrics,
    migrations,
    models,
    providers,
    quality,
    subjects,
    tools,
)
from api.runtime import Runtime
from api.traces import TraceRequests

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # a request body over this is a 413


def create_app(runtime: Runtime) -> FastAPI:
    """The app over `runtime`; each app has its own admission (slots, remembered refusals)."""
    app = FastAPI(
        title="Circuit Breaker",
        version="0.1.0",
        description="Multi-tenant execution of LLM agents.",
        docs_url=None,  # served from the project's own files (api/routes/docs_ui.py)
        redoc_url=None,
        # the spans are `TraceRequests`'s; FastAPI's own would double them under a global
        # provider, and without one it still asks for it on every request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.admission = admission = Admission()
    errors.install(app)
    # innermost of the middlewares (added first): inside the body limit, refusal shortcut,
    # metrics and traces
    app.add_middleware(FastLane, runtime=runtime, admission=admission)
    limit = int(os.environ.get("CB_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))
    app.add_middleware(errors.BodyLimit, limit=limit)
    # outermost: the cheapest refusal first
    app.add_middleware(RefusalShortcut, refusals=admission.refusals)
    app.add_middleware(RequestMetrics)  # outside all: counts every answer, refusals included
    watch_ingress(admission)
    app.add_middleware(TraceRequests)  # around everything: a request's span, its trace id
    # matched in this order, by FastAPI and again by Serve (for its metrics): the execution
    # routes first, so the hot path skips the others' patterns
    for router in (
        chat_completions.router,
        agents.router,
        health.router,
        admin.router,
        admin_config.router,
        migrations.router,
        models.router,
        tools.router,
        executions.router,
        quality.router,
        experiments.router,
        collaborations.router,
        export.router,
        subjects.router,
        providers.router,
        audit.router,
        budgets.router,
        cache.router,
        analytics.router,
        deprecations.router,
        metrics.router,
        docs_ui.router,
        console.router,
    ):
        app.include_router(router)
    app.include_router(graphql_router())
    return app
