"""Operator settings from the environment, and the configuration file they point at."""

from __future__ import annotations

import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

import yaml
from eventsourcing.cryptography import AESCipher

from domain.config import Config, Endpoint, ProviderSpec, insecure_url_problem, parse_config
from domain.errors import ProviderError

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "config" / "default.yaml"


CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"

# URL settings that may hold a password, and the variable each process reads it back from
SECRET_URLS = {
    "database_url": "CB_DATABASE_URL",
    "cache_url": "CB_CACHE_URL",
    "otlp_endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
}


@dataclass(frozen=True)
class Settings:
    """Everything a process needs to find the store, the config and its peers."""

    instance: str = "cb"
    data_dir: str = "./data"
    database_url: str | None = None
    config_path: str = str(DEFAULT_CONFIG)
    projection_poll_s: float = 0.1
    # PostgreSQL read connections per actor process (CB_STORE_POOL_MAX): opened on demand,
    # closed when idle (`store_read_idle_s`); its writes have one connection of their own.
    # Many tenant actors must stay under max_connections
    store_pool_max: int = 1
    # seconds a read connection may sit unused before it is closed (CB_STORE_READ_IDLE_S):
    # a tenant actor reads at its start and seldom after, and its writes have their own
    store_read_idle_s: float = 10.0
    tenant_idle_evict_s: float | None = None
    stream_checkpoint_s: float = 3.0
    stream_checkpoints_per_s: float = 100.0  # per tenant actor; more live streams: less often
    encrypt_payloads: bool = False  # events and stored results under the master key
    retention_sweep_s: float = 3600.0  # CB_RETENTION_SWEEP_S: how often expired data goes
    # observability (docs/operations.md): metrics' tenant label, traces, log lines
    metrics_tenant_label: str = "label"  # CB_METRICS_TENANT_LABEL: label, hashed or off
    metrics_report_s: float = 1.0  # how often each process hands its metrics over
    otlp_endpoint: str | None = None  # OTEL_EXPORTER_OTLP_ENDPOINT: traces on when set
    log_format: str = "text"  # CB_LOG_FORMAT: text or json
    log_prompts: bool = False  # CB_LOG_PROMPTS: prompts in debug log lines (never by default)
    # CB_RAY_TASK_EVENTS: our actors' calls recorded as Ray task events (its state API and
    # dashboard's task views); off, as Serve has them for its own actors (bench/README.md)
    ray_task_events: bool = False
    cache_url: str | None = None  # CB_CACHE_URL: redis://… ; unset: SQLite in the data dir
    # where tenant actors go on a cluster (docs/operations.md, "Placing tenants")
    tenant_placement: str = "default"  # CB_TENANT_PLACEMENT: default (Ray's) or spread
    tenant_resource: str | None = None  # CB_TENANT_RESOURCE: one unit per tenant actor
    tenant_start_timeout_s: float = 60.0  # CB_TENANT_START_TIMEOUT_S: with a resource set
    # CB_SPARE_WORKERS: worker processes each ingress replica keeps started on its node, with
    # the tenant actor's code imported, for the next tenant actors to start in (0: none; off
    # by default: bursts of tenant starts on a small node pay for it, docs/operations.md)
    spare_workers: int = 0
    # CB_STORE_WRITE_TIMEOUT_S: how long an execution's start or end may wait for the store
    # (it is down) before the request is answered 503 service_unavailable
    store_write_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {
            "instance": os.environ.get("CB_INSTANCE", "cb"),
            "data_dir": os.environ.get("CB_DATA_DIR", "./data"),
            "database_url": os.environ.get("CB_DATABASE_URL") or None,
            "config_path": os.environ.get("CB_CONFIG", str(DEFAULT_CONFIG)),
        }
        if os.environ.get("CB_TENANT_IDLE_EVICT_S"):
            values["tenant_idle_evict_s"] = float(os.environ["CB_TENANT_IDLE_EVICT_S"])
        if os.environ.get("CB_STREAM_CHECKPOINT_S"):
            values["stream_checkpoint_s"] = float(os.environ["CB_STREAM_CHECKPOINT_S"])
        if os.environ.get("CB_STREAM_CHECKPOINTS_PER_S"):
            values["stream_checkpoints_per_s"] = float(os.environ["CB_STREAM_CHECKPOINTS_PER_S"])
        if os.environ.get("CB_RETENTION_SWEEP_S"):
            values["retention_sweep_s"] = float(os.environ["CB_RETENTION_SWEEP_S"])
        if _flag("CB_ENCRYPT_PAYLOADS"):
            values["encrypt_payloads"] = True
        if os.environ.get("CB_METRICS_TENANT_LABEL"):
            values["metrics_tenant_label"] = os.environ["CB_METRICS_TENANT_LABEL"]
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            values["otlp_endpoint"] = os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        if os.environ.get("CB_LOG_FORMAT"):
            values["log_format"] = os.environ["CB_LOG_FORMAT"].lower()
        values["log_prompts"] = _flag("CB_LOG_PROMPTS")
        values["ray_task_events"] = _flag("CB_RAY_TASK_EVENTS")
        values["cache_url"] = os.environ.get("CB_CACHE_URL") or None
        values["tenant_placement"] = os.environ.get("CB_TENANT_PLACEMENT", "default").lower()
        values["tenant_resource"] = os.environ.get("CB_TENANT_RESOURCE") or None
        if os.environ.get("CB_TENANT_START_TIMEOUT_S"):
            values["tenant_start_timeout_s"] = float(os.environ["CB_TENANT_START_TIMEOUT_S"])
        if os.environ.get("CB_SPARE_WORKERS"):
            values["spare_workers"] = int(os.environ["CB_SPARE_WORKERS"])
        if os.environ.get("CB_STORE_POOL_MAX"):
            values["store_pool_max"] = int(os.environ["CB_STORE_POOL_MAX"])
        if os.environ.get("CB_STORE_READ_IDLE_S"):
            values["store_read_idle_s"] = float(os.environ["CB_STORE_READ_IDLE_S"])
        if os.environ.get("CB_STORE_WRITE_TIMEOUT_S"):
            values["store_write_timeout_s"] = float(os.environ["CB_STORE_WRITE_TIMEOUT_S"])
        values.update(overrides)
        values["data_dir"] = str(Path(str(values["data_dir"])).resolve())
        return cls(**values)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if self.metrics_tenant_label not in ("label", "hashed", "off"):
            raise ValueError("CB_METRICS_TENANT_LABEL must be label, hashed or off")
        if self.log_format not in ("text", "json"):
            raise ValueError("CB_LOG_FORMAT must be text or json")
        if self.tenant_placement not in ("default", "spread"):
            raise ValueError("CB_TENANT_PLACEMENT must be default or spread")
        if self.spare_workers < 0:
            raise ValueError("CB_SPARE_WORKERS must be 0 or more")
        if self.store_pool_max < 1:
            raise ValueError("CB_STORE_POOL_MAX must be at least 1")
        if not self.store_read_idle_s > 0:
            raise ValueError("CB_STORE_READ_IDLE_S must be above 0")

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any], tuple[str, ...]]]:
        """Pickled without passwords: Ray keeps actor and Serve arguments in its GCS (and
        shows them). The unpickling process reads each one back from its own environment."""
        return _unpickled, self._without_passwords()

    def __copy__(self) -> Settings:
        return self  # immutable: no copy through the password-less pickle

    def __deepcopy__(self, memo: dict[int, Any]) -> Settings:
        return self

    def __repr__(self) -> str:
        values, _ = self._without_passwords()
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in values.items())})"

    def _without_passwords(self) -> tuple[dict[str, Any], tuple[str, ...]]:
        """The field values with every URL's password removed, and which fields lost one."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        removed = tuple(n for n in SECRET_URLS if values[n] and urlsplit(values[n]).password)
        for name in removed:
            values[name] = without_password(values[name])
        return values, removed

    @property
    def uses_postgres(self) -> bool:
        return bool(self.database_url and self.database_url.startswith("postgres"))

    def store_env(self) -> dict[str, str]:
        """The `eventsourcing` persistence settings for this deployment (with its AES-GCM
        cipher over every event's state when `encrypt_payloads` is on)."""
        cipher: dict[str, str] = {}
        if self.encrypt_payloads:
            cipher = {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": master_key(self)}
        if not self.uses_postgres:
            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(Path(self.data_dir) / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "30",
                **cipher,
            }
        url = urlparse(self.database_url or "")
        return {
            **cipher,
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": "0",  # none kept open while idle
            "POSTGRES_MAX_OVERFLOW": str(self.store_pool_max),
            "POSTGRES_CONNECT_TIMEOUT": "10",
        }

    def read_model_url(self) -> str:
        """Where the projections keep their tables: the same PostgreSQL, or a SQLite file."""
        if self.uses_postgres:
            return self.database_url or ""
        Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        return "sqlite:///" + str(Path(self.data_dir) / "readmodels.sqlite")

    def load_config(self) -> Config:
        return load_config(self.config_path)


def _unpickled(values: dict[str, Any], removed: tuple[str, ...]) -> Settings:
    """Settings from their pickle, each removed password read from this process's
    environment (the variable in `SECRET_URLS`, when it names the same user, host and port)."""
    for name in removed:
        variable = SECRET_URLS[name]
        url = with_password(values[name], os.environ.get(variable))
        if url is None:
            logging.getLogger("circuitbreaker").warning(
                "%s: no password for %s in this process's environment; set %s where Ray "
                "runs (every node's `ray start`)", variable, values[name], variable,
            )  # fmt: skip
        else:
            values[name] = url
    return Settings(**values)


def without_password(url: str) -> str:
    """`url` with the password taken out of its user info (the user stays)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}@{hostport}" if user else hostport))


def with_password(url: str, source: str | None) -> str | None:
    """`url` with the password of `source`, if `source` has one for the same user, host and
    port; else None."""
    if not source or urlsplit(source).password is None or not _same_login(url, source):
        return None
    password = urlsplit(source).netloc.rpartition("@")[0].partition(":")[2]
    parts = urlsplit(without_password(url))
    userinfo, _, hostport = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{userinfo}:{password}@{hostport}"))


def _same_login(a: str, b: str) -> bool:
    try:
        one, two = urlsplit(a), urlsplit(b)
        return (one.username or "", one.hostname, one.port) == (
            two.username or "", two.hostname, two.port,
        )  # fmt: skip
    except ValueError:  # a port that is not a number
        return False


def _flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "on", "yes")


def load_config(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    with open(path, encoding="utf-8") as fh:
        return parse_config(yaml.safe_load(fh) or {})


def provider_base_url(spec: ProviderSpec) -> str:
    """The endpoint, overridden by the variable users already set (`OPENAI_BASE_URL`)."""
    override = os.environ.get(spec.base_url_env) if spec.base_url_env else None
    if override and "://" not in override:  # OLLAMA_HOST is often written as host:port
        override = "http://" + override
    url = (override or spec.base_url).rstrip("/")
    problem = insecure_url_problem(url, spec.allow_insecure_http)
    if problem:  # the file's URL is checked at load; this is the environment's override
        raise ProviderError(f"{spec.base_url_env}={problem}")
    return url


def provider_url_problem(spec: ProviderSpec) -> str | None:
    """Why the provider's effective endpoint (after its environment override) is refused."""
    try:
        provider_base_url(spec)
    except ProviderError as exc:
        return str(exc)
    return None


def provider_api_key(spec: ProviderSpec) -> str | None:
    """The credential from the environment; it is never logged, stored or returned."""
    return os.environ.get(spec.api_key_env) if spec.api_key_env else None


def configured_endpoints(config: Config, own_keys: Collection[str] = ()) -> list[Endpoint]:
    """Endpoints this process can call: those with a credential (or the tenant's own key for
    their provider, in `own_keys`), or needing none.

    An endpoint with `enabled_env` (the bundled local model, the local-server presets)
    counts only while it is set. One whose environment override is plain http to a remote
    host is left out (and logged once).
    """
    return [
        endpoint
        for name in config.providers
        for endpoint in config.endpoints(name)
        if (
            not endpoint.spec.requires_api_key
            or provider_api_key(endpoint.spec)
            or endpoint.provider in own_keys
        )
        and (not endpoint.spec.enabled_env or os.environ.get(endpoint.spec.enabled_env))
        and not _refused(endpoint.key, endpoint.spec)
    ]


def configured_providers(config: Config) -> set[str]:
    """Providers this process can call: those with at least one configured endpoint."""
    return {endpoint.provider for endpoint in configured_endpoints(config)}


_told: set[str] = set()


def _refused(name: str, spec: ProviderSpec) -> bool:
    """Whether the provider's endpoint is refused; a warning the first time per problem."""
    problem = provider_url_problem(spec)
    if problem and f"{name}:{problem}" not in _told:
        _told.add(f"{name}:{problem}")
        logging.getLogger("circuitbreaker").warning("provider %s is not used: %s", name, problem)
    return problem is not None


# the master key (AES, base64) that seals tenant secrets and, when asked, event payloads


def master_key_file(settings: Settings) -> Path:
    """`CB_MASTER_KEY_FILE`, else `master.key` in the data directory."""
    return Path(os.environ.get("CB_MASTER_KEY_FILE") or Path(settings.data_dir) / "master.key")


def new_key() -> str:
    return AESCipher.create_key(32)


def write_key(path: Path, key: str) -> None:
    """Write a key file readable by its owner only (never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)


def master_key(settings: Settings) -> str:
    """`CB_MASTER_KEY` (base64 AES key), else the key file; the embedded default makes one."""
    from_env = os.environ.get("CB_MASTER_KEY")
    if from_env:
        return from_env
    path = master_key_file(settings)
    if not path.exists():
        if os.environ.get("CB_MASTER_KEY_FILE"):
            raise RuntimeError("CB_MASTER_KEY_FILE names a file that does not exist")
        write_key(path, new_key())
    return path.read_text().strip()
