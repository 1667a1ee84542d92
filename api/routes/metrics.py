"""`GET /metrics`: the deployment's metrics in Prometheus' text format (docs/operations.md)."""

from __future__ import annotations

import hmac
import os

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from actors import metrics, metrics_actor
from api.runtime import runtime_of
from domain.errors import AuthenticationFailed

router = APIRouter()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", include_in_schema=False)
async def prometheus_metrics(request: Request) -> PlainTextResponse:
    """Every process's metrics of this deployment, as of their last report (≤ 1 s ago for
    a busy process, ≤ 5 s for a quiet one); this replica's own are handed over first. With
    `CB_METRICS_TOKEN` set, that bearer token is required."""
    token = os.environ.get("CB_METRICS_TOKEN")
    if token and not hmac.compare_digest(
        request.headers.get("authorization", ""), f"Bearer {token}"
    ):
        raise AuthenticationFailed("GET /metrics needs the metrics token")
    reporter = metrics.reporter()
    if reporter is not None and (sent := reporter.report()) is not None:
        await sent
    settings = runtime_of(request).settings
    text = await metrics_actor.handle(settings).render.remote()
    return PlainTextResponse(text, media_type=CONTENT_TYPE)
