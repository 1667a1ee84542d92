"""The test cluster: one real Ray, one provider emulator and two Serve apps (SQLite and
PostgreSQL) per session, configured by `tests/config.yaml` over the default configuration.

`start_cluster` is what the session's `cluster` fixture (tests/integration/conftest.py) runs.
"""

from __future__ import annotations

import os
import random
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.emulator import ProviderEmulator

ADMIN_TOKEN = "test-admin-token"
REPLICAS = {"sqlite": 2, "postgres": 1}
PG_URL = os.environ.get("CB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("CB_TEST_REDIS", "redis://127.0.0.1:6379/0")
TEST_CONFIG = Path(__file__).resolve().parent.parent / "config.yaml"


@dataclass
class Cluster:
    port: int
    emulator: ProviderEmulator
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def route_prefix(backend: str) -> str:
        return {"sqlite": "/", "postgres": "/pg"}[backend]

    def url(self, backend: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.route_prefix(backend).rstrip('/')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# below Ray's default worker ports (10002-19999) and the kernel's ephemeral range, so no
# worker or outgoing connection takes one of them between the pick and the server's start
SERVE_APP_PORTS = range(6000, 9800)
PROXY_OFFSET = 64  # serve_app.py's direct mode puts Serve's proxy at CB_PORT + 64


def serve_app_port() -> int:
    """A `CB_PORT` for a `serve_app.py` a test starts: it, the next replicas' ports above it
    and its Serve proxy's port, all free now."""
    for _ in range(500):
        port = random.choice(SERVE_APP_PORTS)
        wanted = [*range(port, port + 4), port + PROXY_OFFSET]
        if all(_bindable(p) for p in wanted):
            return port
    raise RuntimeError("no free CB_PORT in 6000-9800")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def postgres_database() -> str | None:
    """A fresh database for this session, or None when PostgreSQL is unreachable outside CI."""
    try:
        import psycopg

        name = f"cb_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return with_canary_password(PG_URL.rsplit("/", 1)[0] + "/" + name)
    except Exception:
        if os.environ.get("CI") == "true":
            raise
        return None


def with_canary_password(url: str) -> str:
    """`url` with a made-up password if it has none (trust auth ignores it): a canary that
    `test_secrets_in_ray` looks for in Ray's records and logs."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is not None or not parts.username:
        return url
    netloc = f"{parts.username}:canary-pw-{uuid.uuid4().hex[:12]}@{parts.netloc.split('@')[-1]}"
    return urlunsplit(parts._replace(netloc=netloc))


def drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def merged(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overlay` laid over it: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def config_for_tests() -> dict[str, Any]:
    """The default configuration with `tests/config.yaml` over it."""
    import yaml

    from actors.settings import DEFAULT_CONFIG

    default = yaml.safe_load(DEFAULT_CONFIG.read_text())
    return merged(default, yaml.safe_load(TEST_CONFIG.read_text()))


def cluster_env(emulator: ProviderEmulator, jwks_path: Path) -> dict[str, str]:
    """The variables the servers read: every provider pointed at the emulator, the admin
    token and the JWT keys."""
    from tests import jwt_keys

    root = emulator.base_url.removesuffix("/v1")
    return {
        "OPENAI_API_KEY": "test-provider-key",
        "OPENAI_BASE_URL": emulator.base_url,
        "CB_TEST_POOL_EAST_KEY": "test-pool-east-key",
        "CB_TEST_POOL_WEST_KEY": "test-pool-west-key",
        # a preset of the default configuration, on once its key is set
        "GROQ_API_KEY": "test-groq-key",
        "GROQ_BASE_URL": emulator.base_url,
        "ANTHROPIC_API_KEY": "test-anthropic-key",
        "ANTHROPIC_BASE_URL": root,
        "AZURE_OPENAI_API_KEY": "test-azure-key",
        "GEMINI_API_KEY": "test-gemini-key",
        "GEMINI_BASE_URL": root,
        "OLLAMA_HOST": root.removeprefix("http://"),
        "AZURE_OPENAI_ENDPOINT": root,
        "CB_ADMIN_TOKEN": ADMIN_TOKEN,
        "CB_JWT_SECRET": jwt_keys.SECRET,
        "CB_JWT_JWKS": jwt_keys.write_jwks(jwks_path),
        "CB_JWT_AUDIENCE": jwt_keys.AUDIENCE,
        "CB_JWT_ISSUER": jwt_keys.ISSUER,
        "RAY_worker_niceness": "0",
        # no test reads Ray's own metrics or task events: each of the cluster's ~50 processes
        # would export them every few seconds (a tenth of a core while the cluster idles)
        "RAY_enable_metrics_collection": "0",
        "RAY_task_events_report_interval_ms": "0",
        # a replaced ingress replica need not drain for 30 s (it does for a load balancer)
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
    }


@contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """`os.environ` with `values` set, restored as it was on exit."""
    saved = os.environ.copy()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextmanager
def start_cluster(
    emulator: ProviderEmulator, tmp: Path, otlp_endpoint: str | None = None
) -> Iterator[Cluster]:
    """Start Ray, Serve and the apps in `tmp`; stop them (and drop the session's PostgreSQL
    database) on exit. The SQLite app exports its traces to `otlp_endpoint` if given; the
    PostgreSQL app never traces (the path with tracing off).

    The environment is set only while the cluster starts and runs: Ray's workers take it at
    start (through the runtime env), and this process gets its own back on exit."""
    with environ(cluster_env(emulator, tmp / "jwks.json")):
        yield from _run_cluster(emulator, tmp, otlp_endpoint)


def _run_cluster(
    emulator: ProviderEmulator, tmp: Path, otlp_endpoint: str | None = None
) -> Iterator[Cluster]:
    import ray
    import yaml
    from ray import serve

    import serve_app
    from actors.settings import Settings

    data = tmp / "cb-data"
    data.mkdir()
    config_path = data / "config.yaml"
    config_path.write_text(yaml.safe_dump(config_for_tests()))
    pg_url = postgres_database()
    # idle tenant actors leave soon, so a long session holds few processes and connections;
    # streams checkpoint often, so tests of slow streams see checkpoints; every test makes a
    # tenant, so its actor starts in a spare worker (a busy node's setting): the process start
    # and imports run while the previous test runs, not while this one waits
    common = {
        "tenant_idle_evict_s": 12.0,
        "stream_checkpoint_s": 0.2,
        "config_path": str(config_path),
        "spare_workers": 4,
    }
    settings = {
        "sqlite": Settings(
            instance="sqlite", data_dir=str(data / "sqlite"), otlp_endpoint=otlp_endpoint,
            **common,
        )
    }  # fmt: skip
    if pg_url:  # with payload encryption, and the response cache in Redis (SQLite's: a file)
        settings["postgres"] = Settings(
            instance="pg", database_url=pg_url, data_dir=str(data / "pg"),
            encrypt_payloads=True, cache_url=REDIS_URL, **common,
        )  # fmt: skip
    if pg_url:
        # as in production: Ray's processes read the password from their environment (the
        # PostgreSQL app's settings reach them without it); the SQLite app's settings name none
        os.environ["CB_DATABASE_URL"] = pg_url
    # two ingress replicas in front of SQLite: requests of one client land on either
    apps = {name: serve_app.build(s, replicas=REPLICAS[name]) for name, s in settings.items()}
    ray.init(
        namespace="circuitbreaker",
        include_dashboard=False,
        runtime_env={"env_vars": serve_app.forwarded_env()},
        logging_level="WARNING",
    )
    try:
        port = free_port()
        logs = {"enable_access_log": False}
        serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=logs)
        cluster = Cluster(port=port, emulator=emulator, settings=settings)
        for name, app in apps.items():
            serve.run(app, name=name, route_prefix=cluster.route_prefix(name), logging_config=logs)
        yield cluster
    finally:
        # ray.shutdown ends Serve with the cluster; serve.shutdown first would wait 30 s here
        # for its controller's graceful drain
        ray.shutdown()
        if pg_url:
            drop_database(pg_url)
