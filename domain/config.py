"""The configuration model: providers, the model catalog, virtual models, tenant defaults,
ingress limits."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    model_validator,
)

EMPTY: Mapping[str, str] = MappingProxyType({})
Capability = Literal["chat", "tools", "streaming", "vision", "json_mode", "reasoning"]
Strategy = Literal["balanced", "cost_optimized", "performance", "reliability", "task_specific"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointSpec(_Strict):
    """One of several endpoints of a provider (another key, region or base URL): what it
    changes of the provider's settings, and its share of the traffic."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    weight: float = Field(default=1.0, gt=0)
    base_url: str | None = None
    base_url_env: str | None = None
    api_key_env: str | None = None
    api_version: str | None = None
    requests_per_minute: int | None = Field(default=None, gt=0)
    max_concurrency: int | None = Field(default=None, gt=0)
    enabled_env: str | None = None
    allow_insecure_http: bool | None = None


class ProviderSpec(_Strict):
    """One provider (or, with `endpoints`, its shared settings); the credential is named by
    environment variable, never inlined."""

    type: Literal["openai", "anthropic", "azure_openai", "ollama", "gemini"]
    base_url: str
    api_version: str | None = None  # Azure's `api-version` query, Gemini's path version
    base_url_env: str | None = None
    api_key_env: str | None = None
    requires_api_key: bool = True
    requests_per_minute: int = Field(default=3000, gt=0)
    max_concurrency: int = Field(default=256, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)  # the whole attempt, first byte to last
    connect_timeout_s: float = Field(default=5.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_s: float = Field(default=0.25, ge=0)
    max_retry_after_s: float = Field(default=20.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, gt=0)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_min_samples: int = Field(default=20, gt=0)
    breaker_window_s: float = Field(default=60.0, gt=0)
    first_token_timeout_s: float = Field(default=60.0, gt=0)
    enabled_env: str | None = None  # counted as configured only while this variable is set
    # plain http:// to a host other than loopback is refused unless this is set
    allow_insecure_http: bool = False
    # several keys, regions or base URLs of this provider, each with its own permits and
    # breaker; an attempt picks one by `balance` and fails over to the others
    endpoints: tuple[EndpointSpec, ...] = ()
    balance: Literal["weighted", "least_busy"] = "weighted"
    # active health checks (a GET of the model listing) this often, 0: only passive health
    probe_interval_s: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _secure_transport(self) -> ProviderSpec:
        problem = insecure_url_problem(self.base_url, self.allow_insecure_http)
        if problem:
            raise ValueError(f"base_url {problem}")
        names = [e.name for e in self.endpoints]
        if len(set(names)) != len(names):
            raise ValueError(f"endpoints: names must be unique ({', '.join(names)})")
        return self


@dataclass(frozen=True)
class Endpoint:
    """One endpoint of a provider as calls use it: `key` names its provider actor, permits
    and breaker (the provider's name when it has a single endpoint, else `provider:name`);
    `spec` is the provider's settings with the endpoint's over them."""

    key: str
    provider: str
    name: str | None
    spec: ProviderSpec
    weight: float = 1.0


ENDPOINT_OWN = ("name", "weight")  # an endpoint's fields that are not provider settings
SHARED_ONLY = ("endpoints", "balance")  # a provider's fields an endpoint does not take


def endpoint_data(providers: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The settings (a mapping, as configured) of the endpoint `key`, or None if no provider
    has it: a provider's own for its single endpoint, else its shared ones with the
    endpoint's over them."""
    found = providers.get(key)
    if isinstance(found, Mapping):
        return dict(found)
    provider, _, name = key.rpartition(":")
    shared = providers.get(provider)
    if not isinstance(shared, Mapping):
        return None
    for endpoint in shared.get("endpoints") or ():
        if isinstance(endpoint, Mapping) and endpoint.get("name") == name:
            return _overlay(shared, endpoint)
    return None


def _overlay(shared: Mapping[str, Any], endpoint: Mapping[str, Any]) -> dict[str, Any]:
    """An endpoint's settings over its provider's; an endpoint that names its own `base_url`
    does not inherit the provider's `base_url_env` (which would replace it)."""
    own = {k: v for k, v in endpoint.items() if k not in ENDPOINT_OWN and v is not None}
    merged = {k: v for k, v in shared.items() if k not in SHARED_ONLY}
    if "base_url" in own and "base_url_env" not in own:
        merged.pop("base_url_env", None)
    return {**merged, **own}


def expand(provider: str, spec: ProviderSpec) -> tuple[Endpoint, ...]:
    """The endpoints of `provider`, each with its effective settings (raises ValueError for
    an endpoint whose settings are invalid)."""
    if not spec.endpoints:
        return (Endpoint(provider, provider, None, spec),)
    shared = spec.model_dump()
    found = []
    for endpoint in spec.endpoints:
        key = f"{provider}:{endpoint.name}"
        try:
            merged = ProviderSpec.model_validate(_overlay(shared, endpoint.model_dump()))
        except ValueError as exc:
            raise ValueError(f"{endpoint.name}: {exc}") from None
        found.append(Endpoint(key, provider, endpoint.name, merged, endpoint.weight))
    return tuple(found)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: `localhost`, 127.0.0.0/8 or ::1."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@functools.lru_cache(maxsize=256)  # asked on every provider attempt
def insecure_url_problem(url: str, allowed: bool = False) -> str | None:
    """Why `url` may not carry provider calls (plain http:// to a host other than loopback,
    unless `allowed`), or None."""
    parts = urlsplit(url.strip())
    if allowed or parts.scheme.lower() != "http" or is_loopback(parts.hostname or ""):
        return None
    return (
        f"http://{parts.hostname or ''}: plain http to a host other than loopback is refused; "
        "use https:// or set the provider's allow_insecure_http: true"
    )


class ParamSpec(_Strict):
    """How a model takes one unified parameter: its wire name and accepted range."""

    name: str | None = None
    min: float | None = None
    max: float | None = None


class ModelSpec(_Strict):
    """A concrete model: where it runs, what it can do, what it accepts, what it costs."""

    provider: str
    provider_model: str | None = None
    # a server that runs whatever model it was started with (vLLM, LM Studio): its name
    provider_model_env: str | None = None
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    capabilities: frozenset[Capability] = frozenset({"chat"})
    parameters: dict[str, ParamSpec] = Field(default_factory=dict)
    input_price_per_mtok: float = Field(ge=0)
    output_price_per_mtok: float = Field(ge=0)
    cached_input_price_per_mtok: float | None = Field(default=None, ge=0)
    latency_prior_ms: float = Field(default=1000.0, gt=0)
    quality: float = Field(default=0.5, ge=0, le=1)
    strengths: dict[str, float] = Field(default_factory=dict)  # task → score, else `quality`


class VirtualModel(_Strict):
    """A name clients send (`cb:smart-chat`) and how it picks among its candidates."""

    strategy: Strategy
    candidates: tuple[str, ...] = Field(min_length=1)
    task: str | None = None
    description: str = ""


class TenantDefaults(_Strict):
    requests_per_minute: int = Field(default=600, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)
    max_concurrent_executions: int = Field(default=64, gt=0)
    burst: int | None = Field(default=None, gt=0)
    idle_evict_s: float = Field(default=900.0, gt=0)


class IngressLimits(_Strict):
    """Overload protection of each ingress replica: executions it runs at once, and a
    bounded wait, shared round-robin among tenants, for the rest (beyond it: 503); and the
    streams it keeps open at once (a started stream holds no execution slot)."""

    max_in_flight: int = Field(default=256, gt=0)
    max_queued: int = Field(default=512, ge=0)
    max_open_streams: int = Field(default=10_000, gt=0)
    max_queued_per_tenant: int = Field(default=128, ge=0)
    max_queue_wait_s: float = Field(default=10.0, gt=0)
    # adaptive: the replica runs fewer at once while its event loop lags past this (0: off)
    target_loop_lag_ms: float = Field(default=20.0, ge=0)
    min_in_flight: int = Field(default=4, gt=0)


class IngressScaling(_Strict):
    """How many ingress (`Gateway`) replicas Serve runs: `min_replicas` of them when it
    equals `max_replicas`, else autoscaled between the two on requests in flight per replica.

    `target_ongoing_requests` comes from a measurement (bench/README.md, "Ingress
    autoscaling"): between where one replica saturates and where its throughput drops."""

    min_replicas: int = Field(default=1, ge=1)
    max_replicas: int = Field(default=1, ge=1)
    target_ongoing_requests: float = Field(default=24.0, gt=0)
    upscale_delay_s: float = Field(default=10.0, ge=0)
    downscale_delay_s: float = Field(default=120.0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> IngressScaling:
        if self.max_replicas < self.min_replicas:
            raise ValueError("max_replicas is below min_replicas")
        return self

    def serve_options(self) -> dict[str, Any]:
        """The deployment options Serve takes for this: `num_replicas`, or
        `autoscaling_config`."""
        if self.min_replicas == self.max_replicas:
            return {"num_replicas": self.min_replicas}
        return {
            "autoscaling_config": {
                "min_replicas": self.min_replicas,
                "initial_replicas": self.min_replicas,
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests,
                "upscale_delay_s": self.upscale_delay_s,
                "downscale_delay_s": self.downscale_delay_s,
            }
        }


class Scaling(_Strict):
    """Replica counts read when the Serve application is built (start or `serve deploy`)."""

    ingress: IngressScaling = IngressScaling()


class SemanticCache(_Strict):
    """Where the semantic cache's embeddings come from: an OpenAI-compatible `/embeddings`
    of a configured provider, and the least similarity that counts as a hit by default."""

    provider: str = "openai"
    model: str = "text-embedding-3-small"
    threshold: float = Field(default=0.92, ge=0.5, le=1.0)
    timeout_s: float = Field(default=5.0, gt=0)


class CacheConfig(_Strict):
    """The response cache: for now, the semantic cache's embeddings."""

    semantic: SemanticCache = SemanticCache()


class Config(_Strict):
    """A configuration, validated: the file, or the effective one (the file with the
    operators' recorded overrides laid over it, as the config actor hands it out)."""

    prices_as_of: str = ""
    providers: dict[str, ProviderSpec]
    models: dict[str, ModelSpec]
    virtual_models: dict[str, VirtualModel] = Field(default_factory=dict)
    tenant_defaults: TenantDefaults = TenantDefaults()
    ingress: IngressLimits = IngressLimits()
    cache: CacheConfig = CacheConfig()
    scaling: Scaling = Scaling()
    _endpoints: dict[str, tuple[Endpoint, ...]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self, info: ValidationInfo) -> Config:
        for name in self.providers:
            try:
                self.endpoints(name)
            except ValueError as exc:
                raise ValueError(f"providers.{name}.endpoints: {exc}") from None
        if (info.context or {}).get("skip_references"):
            return self
        problems = dangling_references(self.model_dump())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def wire_model(self, model: str, environ: Mapping[str, str] = EMPTY) -> str:
        """The name the provider knows a configured model by (`environ`: the variables a
        `provider_model_env` is read from)."""
        spec = self.models[model]
        named = environ.get(spec.provider_model_env) if spec.provider_model_env else None
        return named or spec.provider_model or model

    def endpoints(self, provider: str) -> tuple[Endpoint, ...]:
        """The provider's endpoints (one, named after it, when it lists none)."""
        found = self._endpoints.get(provider)
        if found is None:
            found = self._endpoints[provider] = expand(provider, self.providers[provider])
        return found


def dangling_references(data: dict[str, Any]) -> list[str]:
    """Models naming unknown providers and candidates naming unknown models, with paths.

    Reads the raw mapping, so it also works on a configuration that fails elsewhere.
    """
    providers = data.get("providers") if isinstance(data.get("providers"), dict) else {}
    models = data.get("models") if isinstance(data.get("models"), dict) else {}
    problems = []
    for name, model in models.items():
        provider = model.get("provider") if isinstance(model, dict) else None
        if isinstance(provider, str) and provider not in providers:
            problems.append(f"models.{name}.provider: unknown provider {provider!r}")
    virtuals = data.get("virtual_models")
    for name, virtual in (virtuals if isinstance(virtuals, dict) else {}).items():
        candidates = virtual.get("candidates") if isinstance(virtual, dict) else None
        for i, candidate in enumerate(candidates if isinstance(candidates, list | tuple) else []):
            if isinstance(candidate, str) and candidate not in models:
                problems.append(
                    f"virtual_models.{name}.candidates[{i}]: unknown model {candidate!r}"
                )
    return problems


def parse_config(data: dict[str, Any]) -> Config:
    """Validate a configuration mapping (as read from YAML) into a Config.

    Top-level keys starting with `_` hold YAML anchors for reuse and are ignored.
    """
    return Config.model_validate({k: v for k, v in data.items() if not k.startswith("_")})
