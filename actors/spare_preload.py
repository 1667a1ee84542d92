"""The setup hook of a tenant actor's worker process (`actors.spare_workers`): the actor's
code and what its first execution uses, imported before the process is given an actor."""

from __future__ import annotations

import importlib
import logging
import os
import time

from actors import heap, spare_workers

log = logging.getLogger(__name__)

# what a new tenant actor imports on first use, found by listing its `sys.modules` after its
# first execution: httpx's async backend, the store's persistence module, and what Ray's
# argument decoding and the provider replies pull in
FIRST_USE = (
    "anyio.to_thread",
    "gzip",
    "ray._common.pydantic_compat",
    "ray._private.arrow_serialization",
    "starlette.concurrency",
)
STORE_MODULE = {True: "eventsourcing.postgres", False: "eventsourcing.sqlite"}
TRACING = "opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.sdk.trace"


def preload() -> None:
    """Import the tenant actor's code and what its first execution uses, make the TLS
    context of provider calls, and register as a ready spare; Ray runs this as a tenant
    actor's worker starts, before it is given an actor (so nothing here is any tenant's)."""
    spare_workers.mark(spare_workers.STARTING)
    import actors.tenant_actor  # noqa: F401
    from actors import http_client

    wanted = [*FIRST_USE, STORE_MODULE[bool(os.environ.get("CB_DATABASE_URL"))]]
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        wanted += TRACING
    for module in wanted:
        try:
            importlib.import_module(module)
        except ImportError:
            log.debug("preload: %s is not installed", module)
    http_client.warm()
    heap.settle()  # its full collection here, not in the actor's start
    spare_workers.preloaded_at = time.time()
    spare_workers.mark(spare_workers.READY)
