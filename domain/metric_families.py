"""Every metric the gateway exports: name, kind, help, labels and buckets.

GenAI metrics use the OpenTelemetry GenAI semantic conventions' names as Prometheus renders
them (dots to underscores, the unit `s` as `_seconds`, `{token}` dropped); the gateway's own
are `cb_*`. A family with `tenant=True` carries a `tenant` label unless the operator turns it
off (`CB_METRICS_TENANT_LABEL`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True)
class Family:
    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    tenant: bool = False
    gauge_sum: bool = True  # a gauge reported by many processes: their sum (else the max)


# gen_ai.provider.name by provider type (the GenAI semantic conventions' well-known names;
# the configured provider's own name is `provider` on the cb_provider_* families)
GENAI_PROVIDER = {
    "openai": "openai",
    "anthropic": "anthropic",
    "azure_openai": "azure.ai.openai",
    "gemini": "gcp.gemini",
    "ollama": "ollama",
}
GENAI = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model",
         "gen_ai_response_model")  # fmt: skip
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))  # 1 … 67,108,864, as the conventions say
GENAI_SECONDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                 40.96, 81.92)  # fmt: skip
FAST_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                5.0, 10.0, 30.0, 60.0)  # fmt: skip
BATCH_SIZES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)

FAMILIES: tuple[Family, ...] = (
    # GenAI client metrics, one observation per model call (an attempt that was answered)
    Family("gen_ai_client_token_usage", Kind.HISTOGRAM,
           "Input and output tokens per model call, as the provider reported them.",
           (*GENAI, "gen_ai_token_type"), TOKEN_BUCKETS, tenant=True),
    Family("gen_ai_client_operation_duration_seconds", Kind.HISTOGRAM,
           "Duration of each model call (attempt), errors included with error_type.",
           (*GENAI, "error_type"), GENAI_SECONDS, tenant=True),
    Family("gen_ai_client_operation_time_to_first_chunk_seconds", Kind.HISTOGRAM,
           "Time from a streamed model call's request to its first content chunk.",
           GENAI, GENAI_SECONDS, tenant=True),
    # executions and their cost
    Family("cb_executions_total", Kind.COUNTER,
           "Executions ended, by kind (agent, chat_completion) and status.",
           ("kind", "status"), tenant=True),
    Family("cb_execution_duration_seconds", Kind.HISTOGRAM,
           "Duration of whole executions, tool loops included.",
           ("kind", "status"), GENAI_SECONDS, tenant=True),
    Family("cb_cost_usd_total", Kind.COUNTER,
           "Cost of ended executions in US dollars, from real token counts.",
           ("model",), tenant=True),
    # the response cache and guardrails
    Family("cb_cache_lookups_total", Kind.COUNTER,
           "Response cache lookups by result (hit, semantic_hit, miss, error).",
           ("result",), tenant=True),
    Family("cb_cache_saved_usd_total", Kind.COUNTER,
           "What answers served from the response cache would have cost, in US dollars.",
           (), tenant=True),
    Family("cb_guardrail_decisions_total", Kind.COUNTER,
           "Guardrail checks that fired, by stage (input, output), check type and action.",
           ("stage", "check", "action"), tenant=True),
    # the ingress
    Family("cb_http_requests_total", Kind.COUNTER,
           "HTTP requests answered, by route template, method and status.",
           ("route", "method", "status")),
    Family("cb_http_request_duration_seconds", Kind.HISTOGRAM,
           "Time to the response's headers (a stream's start), by route template.",
           ("route", "method"), FAST_SECONDS),
    Family("cb_refusals_total", Kind.COUNTER,
           "Requests refused with an error, by the error's stable type and its category "
           "(client, provider, internal).",
           ("type", "category"), tenant=True),
    Family("cb_ingress_in_flight", Kind.GAUGE, "Executions holding an ingress slot."),
    Family("cb_ingress_queued", Kind.GAUGE, "Executions waiting for an ingress slot."),
    Family("cb_ingress_limit", Kind.GAUGE,
           "The ingress's adaptive limit on executions in flight (summed over replicas)."),
    Family("cb_streams_open", Kind.GAUGE, "SSE streams open to clients."),
    Family("cb_tenant_actors_alive", Kind.GAUGE, "Tenant actors running."),
    # providers
    Family("cb_provider_attempts_total", Kind.COUNTER,
           "Provider attempts by outcome (ok, or the error type).",
           ("provider", "model", "outcome")),
    Family("cb_provider_latency_seconds", Kind.HISTOGRAM,
           "Provider attempt latency, by provider.", ("provider",), GENAI_SECONDS),
    Family("cb_provider_breaker_state", Kind.GAUGE,
           "Breaker state per provider: 0 closed, 1 half-open, 2 open.",
           ("provider",), gauge_sum=False),
    Family("cb_provider_permits_in_use", Kind.GAUGE,
           "Provider permits granted and not yet returned.", ("provider",)),
    # the event store and the projections
    Family("cb_event_store_write_seconds", Kind.HISTOGRAM,
           "Time of one group-commit write to the event store.", (), FAST_SECONDS),
    Family("cb_event_store_batch_events", Kind.HISTOGRAM,
           "Events per group-commit write.", (), BATCH_SIZES),
    Family("cb_projection_lag_seconds", Kind.GAUGE,
           "Age of the oldest event a projection has not folded yet (0 when caught up).",
           ("projection",), gauge_sum=False),
)  # fmt: skip

BY_NAME: dict[str, Family] = {f.name: f for f in FAMILIES}
