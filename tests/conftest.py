"""One real Ray cluster, one emulator and two Serve apps (SQLite and PostgreSQL) per session."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.emulator import ProviderEmulator

if TYPE_CHECKING:
    from actors.settings import Settings

ADMIN_TOKEN = "test-admin-token"
REPLICAS = {"sqlite": 2, "postgres": 1}
PG_URL = os.environ.get("CB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_database() -> str | None:
    """A fresh database for this session, or None when PostgreSQL is unreachable outside CI."""
    try:
        import psycopg

        name = f"cb_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return PG_URL.rsplit("/", 1)[0] + "/" + name
    except Exception:
        if os.environ.get("CI") == "true":
            raise
        return None


def _drop_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def write_test_config(path: Path) -> str:
    """The default configuration plus `flaky` and `brittle` providers with short timeouts and
    a quick breaker (two failures, 2.5 s cooldown), their models, and virtual names built for
    the tests."""
    import yaml

    from actors.settings import DEFAULT_CONFIG

    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    flaky = {
        "type": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "base_url_env": "OPENAI_BASE_URL",
        "api_key_env": "OPENAI_API_KEY",
        "first_token_timeout_s": 0.6,
        "timeout_s": 5,
        "max_retries": 0,
        "breaker_failure_threshold": 2,
        "breaker_reset_s": 2.5,
    }
    # `brittle` is the same, kept for the breaker's own test so others do not trip it
    config["providers"].update(flaky=flaky, brittle=flaky)
    chat = {
        "provider": "flaky",
        "context_window": 4096,
        "max_output_tokens": 1024,
        "parameters": {"temperature": {"min": 0, "max": 2}, "max_tokens": {}},
        "input_price_per_mtok": 1.0,
        "output_price_per_mtok": 2.0,
    }
    config["models"]["flaky-chat"] = {
        **chat,
        "provider_model": "flaky-model",
        "capabilities": ["chat", "tools", "streaming"],
    }
    config["models"]["plain-chat"] = {**chat, "capabilities": ["chat", "streaming"]}
    config["models"]["brittle-chat"] = {
        **chat,
        "provider": "brittle",
        "capabilities": ["chat", "tools", "streaming"],
    }
    # two OpenAI-format models for the routing strategies: `speedy-a` is faster by prior,
    # dearer, and better at coding; `speedy-b` cheaper and better at creative work
    for name, prior, price, strengths in (
        ("speedy-a", 100, 5.0, {"coding": 0.9, "creative": 0.2}),
        ("speedy-b", 200, 0.1, {"coding": 0.3, "creative": 0.9}),
    ):
        config["models"][name] = {
            **chat,
            "provider": "openai",
            "capabilities": ["chat", "tools", "streaming"],
            "latency_prior_ms": prior,
            "input_price_per_mtok": price,
            "output_price_per_mtok": 2 * price,
            "strengths": strengths,
        }
    for provider in ("flaky", "brittle"):
        config["virtual_models"][f"test:{provider}-first"] = {
            "strategy": "balanced",
            "candidates": [f"{provider}-chat", "gpt-4o-mini"],
        }
    path.write_text(yaml.safe_dump(config))
    return str(path)


@dataclass
class Cluster:
    port: int
    emulator: ProviderEmulator
    settings: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def route_prefix(backend: str) -> str:
        return "/" if backend == "sqlite" else "/pg"

    def url(self, backend: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.route_prefix(backend).rstrip('/')}"


@pytest.fixture(scope="session")
def emulator() -> Iterator[ProviderEmulator]:
    emu = ProviderEmulator().start()
    yield emu
    emu.stop()


@pytest.fixture(scope="session")
def cluster(
    emulator: ProviderEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    import ray
    from ray import serve

    import serve_app
    from actors.settings import Settings
    from tests import jwt_keys

    os.environ.update(
        {
            "OPENAI_API_KEY": "test-provider-key",
            "OPENAI_BASE_URL": emulator.base_url,
            "ANTHROPIC_API_KEY": "test-anthropic-key",
            "ANTHROPIC_BASE_URL": emulator.base_url.removesuffix("/v1"),
            "AZURE_OPENAI_API_KEY": "test-azure-key",
            "GEMINI_API_KEY": "test-gemini-key",
            "GEMINI_BASE_URL": emulator.base_url.removesuffix("/v1"),
            "OLLAMA_HOST": emulator.base_url.removesuffix("/v1").removeprefix("http://"),
            "AZURE_OPENAI_ENDPOINT": emulator.base_url.removesuffix("/v1"),
            "CB_ADMIN_TOKEN": ADMIN_TOKEN,
            "CB_JWT_SECRET": jwt_keys.SECRET,
            "CB_JWT_JWKS": jwt_keys.write_jwks(tmp_path_factory.mktemp("jwks") / "jwks.json"),
            "CB_JWT_AUDIENCE": jwt_keys.AUDIENCE,
            "CB_JWT_ISSUER": jwt_keys.ISSUER,
            "RAY_worker_niceness": "0",
            # a replaced ingress replica need not drain for 30 s (it does for a load balancer)
            "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
        }
    )
    data = tmp_path_factory.mktemp("cb-data")
    pg_url = _postgres_database()
    # idle tenant actors leave soon, so a long session holds few processes and connections
    # streams checkpoint often, so tests of slow streams see checkpoints
    common = {
        "tenant_idle_evict_s": 12.0,
        "stream_checkpoint_s": 0.2,
        "config_path": write_test_config(Path(data) / "config.yaml"),
    }
    settings = {
        "sqlite": Settings(instance="sqlite", data_dir=str(Path(data) / "sqlite"), **common)
    }
    if pg_url:  # with payload encryption: every PostgreSQL test runs with it on
        settings["postgres"] = Settings(
            instance="pg", database_url=pg_url, data_dir=str(Path(data) / "pg"),
            encrypt_payloads=True, **common,
        )  # fmt: skip
    # two ingress replicas in front of SQLite: requests of one client land on either
    apps = {name: serve_app.build(s, replicas=REPLICAS[name]) for name, s in settings.items()}
    ray.init(
        namespace="circuitbreaker",
        include_dashboard=False,
        runtime_env={"env_vars": serve_app.forwarded_env()},
        logging_level="WARNING",
    )
    port = _free_port()
    logs = {"enable_access_log": False}
    serve.start(http_options={"host": "127.0.0.1", "port": port}, logging_config=logs)
    cluster = Cluster(port=port, emulator=emulator, settings=settings)
    for name, app in apps.items():
        serve.run(app, name=name, route_prefix=cluster.route_prefix(name), logging_config=logs)
    yield cluster
    # ray.shutdown ends Serve with the cluster; serve.shutdown first would wait 30 s here
    # for its controller's graceful drain
    ray.shutdown()
    if pg_url:
        _drop_database(pg_url)


@dataclass
class Tenant:
    id: str
    api_key: str

    def headers(self, key: str | None = None) -> dict[str, str]:
        return {"X-Tenant-ID": self.id, "Authorization": f"Bearer {key or self.api_key}"}


class Gateway:
    """A test client for one backend's app, with helpers that make tenants and agents."""

    def __init__(self, cluster: Cluster, backend: str) -> None:
        self.backend = backend
        self.cluster = cluster
        self.settings = cluster.settings[backend]
        self.replicas = REPLICAS[backend]
        self.http = httpx.Client(base_url=cluster.url(backend), timeout=60)
        self.admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def new_tenant(self, name: str = "Acme") -> Tenant:
        reply = self.http.post("/api/v1/admin/tenants", json={"name": name}, headers=self.admin)
        assert reply.status_code == 201, reply.text
        body = reply.json()
        return Tenant(body["tenant"]["id"], body["api_key"])

    def new_agent(self, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
        definition = {
            "name": "Helper",
            "model": "cb:smart-chat",
            "system_prompt": "You are a helpful assistant.",
            "parameters": {"temperature": 0.3},
            **overrides,
        }
        reply = self.http.post("/api/v1/agents", json=definition, headers=tenant.headers())
        assert reply.status_code == 201, reply.text
        return reply.json()

    def execute_held(self, tenant: Tenant, agent_id: str, tag: str) -> Callable[[], httpx.Response]:
        """Execute in the background until the emulator holds the request (script a delay for
        `tag` first); returns a function that waits for and gives the reply."""
        result: dict[str, httpx.Response] = {}
        worker = threading.Thread(
            target=lambda: result.update(reply=self.execute(tenant, agent_id, tag))
        )
        worker.start()
        deadline = time.monotonic() + 10
        while not self.cluster.emulator.requests_matching(tag):
            assert time.monotonic() < deadline, "the provider was never called"
            time.sleep(0.02)

        def reply() -> httpx.Response:
            worker.join(timeout=60)
            return result["reply"]

        return reply

    def execute(self, tenant: Tenant, agent_id: str, prompt: str, **body: Any) -> httpx.Response:
        return self.http.post(
            f"/api/v1/agents/{agent_id}/execute",
            json={"prompt": prompt, **body},
            headers=tenant.headers(),
        )


def stored_events(settings: Settings) -> list[tuple[bytes, Any]]:
    """Every stored event of the app: its bytes as stored, and the event decoded."""
    from actors.event_store import EventStore

    app = EventStore(env=settings.store_env())
    try:
        notes = app.recorder.select_notifications(start=None, limit=10**6)
        return [(bytes(n.state), app.mapper.to_domain_event(n)) for n in notes]
    finally:
        app.close()


def canary_in_store(gateway: Gateway, canary: str) -> bool:
    """Whether the canary's bytes are anywhere in the backend's stored data: any SQLite file
    (and WAL) of the app, or any row of any PostgreSQL table and the events' state bytes."""
    if gateway.backend == "sqlite":
        files = Path(gateway.settings.data_dir).glob("*.sqlite*")
        return any(canary.encode() in f.read_bytes() for f in files if f.is_file())
    import psycopg

    with psycopg.connect(gateway.settings.database_url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()]  # fmt: skip
        in_rows = sum(
            conn.execute(
                f"SELECT count(*) FROM {t} AS r WHERE r::text LIKE %s", (f"%{canary}%",)
            ).fetchone()[0]
            for t in tables
        )
        in_events = conn.execute(
            "SELECT count(*) FROM circuitbreaker_events"
            " WHERE position(convert_to(%s, 'UTF8') in state) > 0",
            (canary,),
        ).fetchone()[0]
    return bool(in_rows or in_events)


# for behaviour the storage backend cannot change (provider codecs, routing, heartbeats…):
# run it against the SQLite app only, which also has two ingress replicas
SQLITE_ONLY = pytest.mark.parametrize("gateway", ["sqlite"], indirect=True)


@pytest.fixture(params=["sqlite", "postgres"])
def gateway(request: pytest.FixtureRequest, cluster: Cluster) -> Iterator[Gateway]:
    if request.param not in cluster.settings:
        pytest.skip("PostgreSQL is not reachable (set CI=true to require it)")
    gw = Gateway(cluster, request.param)
    yield gw
    gw.http.close()
