"""Composition root: the Serve deployment, and `python serve_app.py` to run it all locally."""

from __future__ import annotations

import logging
import os
import re
import secrets
import signal
import ssl
import sys
import threading
from typing import Any
from urllib.parse import urlsplit


def serve_mode() -> str:
    return os.environ.get("CB_SERVE_MODE", "direct")


def _direct_ingress_env() -> None:
    """`CB_SERVE_MODE=direct` (the default): the ingress replica itself listens on CB_PORT.

    Serve's direct ingress skips the proxy hop (2.6x the throughput here, see bench/).
    Serve reads these at import, so they are set before Ray is imported.
    """
    if serve_mode() != "direct":
        return
    port = int(os.environ.get("CB_PORT", "8000"))
    os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", str(port))
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT", str(port + 63))
    # a stopping replica keeps answering this long (Serve's default, 30 s, suits a load
    # balancer that must notice first; raise it back behind one)
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "2")


def json_logs() -> bool:
    return os.environ.get("CB_LOG_FORMAT", "").lower() == "json"


def _json_log_env() -> None:
    """`CB_LOG_FORMAT=json`: Ray's driver prints worker lines as they are (no
    "[repeated 3x across cluster]" appended), and Serve's own lines go to its JSON files
    (logs/serve/), not as text to the processes' stderr. Read by Ray at import."""
    if json_logs():
        os.environ.setdefault("RAY_DEDUP_LOGS", "0")
        os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")


_direct_ingress_env()
_json_log_env()

from ray import serve

from actors import heap
from actors.log_setup import configure_logging
from actors.settings import Settings
from api.app import create_app
from api.runtime import Runtime

log = logging.getLogger("circuitbreaker")


ACCESS_LOG = {"enable_access_log": os.environ.get("CB_ACCESS_LOG") == "1"}
# without the access log a replica's Serve logger keeps WARNING and up: its INFO lines are
# the access lines (a log record made per request only to be filtered out) and its start
REPLICA_LOG = {**ACCESS_LOG, "log_level": "INFO" if ACCESS_LOG["enable_access_log"] else "WARNING"}


def serve_logging(settings: Settings, replica: bool = False) -> dict[str, Any]:
    """Serve's logging config for its controller and proxy (logs/serve/), or our replicas'."""
    base = REPLICA_LOG if replica else ACCESS_LOG
    return {**base, "encoding": "JSON" if settings.log_format == "json" else "TEXT"}


@serve.deployment(
    max_ongoing_requests=int(os.environ.get("CB_MAX_ONGOING_REQUESTS", "100000")),
    ray_actor_options={"num_cpus": 0},
    logging_config=REPLICA_LOG,
)
@serve.ingress()
class Gateway:
    """The stateless ingress: authenticates, validates, calls actors, frames responses."""

    def __init__(self, settings: Settings) -> None:
        configure_logging(settings, "ingress")
        self.runtime = Runtime(settings)
        self.runtime.warm_up()

    def __serve_build_asgi_app__(self) -> Any:
        """The FastAPI app over this replica's runtime, built inside the replica (nothing of
        it is pickled); Serve calls this after `__init__`. Then the collector is settled
        (`actors.heap`): the app's routes and schemas live as long as the replica."""
        app = create_app(self.runtime)
        heap.settle()
        return app


def build(settings: Settings | None = None, replicas: int | None = None) -> Any:
    """The Serve application for these settings: as many ingress replicas as `replicas`, or
    as the configuration's `scaling.ingress` says (fixed, or autoscaled)."""
    settings = settings or Settings.from_env()
    scaling = (
        {"num_replicas": replicas}
        if replicas is not None
        else settings.load_config().scaling.ingress.serve_options()
    )
    logging_config = serve_logging(settings, replica=True)
    return Gateway.options(**scaling, logging_config=logging_config).bind(settings)


# `serve run serve_app:app` uses this, configured from the environment.
app = build() if os.environ.get("CB_BUILD_ON_IMPORT", "1") == "1" else None

FORWARDED_ENV_PREFIXES = (
    "CB_",
    "OPENAI_",
    "ANTHROPIC_",
    "GEMINI_",
    "AZURE_",
    "OLLAMA_",
    # the OpenAI-compatible presets' URLs and served models
    "GROQ_",
    "TOGETHER_",
    "DEEPSEEK_",
    "MISTRAL_",
    "OPENROUTER_",
    "VLLM_",
    "LMSTUDIO_",
    "LLAMACPP_",
    "RAY_SERVE_",
)


SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD", re.IGNORECASE)


def forwarded_env() -> dict[str, str]:
    """Settings the Ray workers need (config, store, provider endpoints), never a secret.

    Ray writes a job's runtime_env, env_vars included, into its logs
    (`runtime_env_agent.log`), so credentials must not travel that way: workers of the local
    Ray that `python serve_app.py` starts inherit them from this process's environment, and
    on a cluster they come from each node's environment (docs/operations.md).
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(FORWARDED_ENV_PREFIXES) and not _secret(k, v)
    }
    env.setdefault("RAY_worker_niceness", "0")
    return env


def _secret(name: str, value: str) -> bool:
    """A credential, or a URL with a password in it."""
    return bool(SECRET_NAME.search(name) or urlsplit(value).password)


def tls_options() -> dict[str, str]:
    """Serve's TLS options from `CB_TLS_CERT` and `CB_TLS_KEY` (PEM files: the certificate
    chain, and its unencrypted key); empty when neither is set. Serve's proxy and, in direct
    mode, every ingress replica then speak HTTPS only (HTTP/1.1: Serve's uvicorn has no h2)."""
    cert, key = os.environ.get("CB_TLS_CERT"), os.environ.get("CB_TLS_KEY")
    if not cert and not key:
        return {}
    if not cert or not key:
        raise SystemExit("CB_TLS_CERT and CB_TLS_KEY are set together (or neither)")
    for name, path in (("CB_TLS_CERT", cert), ("CB_TLS_KEY", key)):
        if not os.access(path, os.R_OK):
            raise SystemExit(f"{name}={path}: no such readable file")
    return {"ssl_certfile": os.path.abspath(cert), "ssl_keyfile": os.path.abspath(key)}


def _own_tls_context() -> ssl.SSLContext:
    """A TLS context that trusts the gateway's own certificate, for this process's calls to
    the gateway it just started (its address need not be a name the certificate holds)."""
    context = ssl.create_default_context(cafile=os.environ["CB_TLS_CERT"])
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # the leaf itself is the anchor
    context.check_hostname = False
    return context


def main() -> None:
    """Start a local Ray, the Serve app on CB_HOST:CB_PORT, and wait for Ctrl-C or SIGTERM."""
    configure_logging(None, "driver")
    import ray

    os.environ.setdefault("RAY_worker_niceness", "0")
    settings = Settings.from_env()
    tls = tls_options()  # before anything starts: a bad setting stops here
    scheme, verify = ("https", _own_tls_context()) if tls else ("http", True)
    if not os.environ.get("CB_ADMIN_TOKEN"):
        os.environ["CB_ADMIN_TOKEN"] = secrets.token_urlsafe(24)
        _tell_generated_token(settings)
    local = _start_local_model(settings)
    host = os.environ.get("CB_HOST", "127.0.0.1")
    port = int(os.environ.get("CB_PORT", "8000"))
    # in direct mode the replicas take CB_PORT upwards; Serve's own proxy moves aside
    proxy_port = port + 64 if serve_mode() == "direct" else port
    ray.init(
        # "local" starts a Ray of our own; without it ray.init may join any running cluster
        address=os.environ.get("RAY_ADDRESS") or "local",
        namespace="circuitbreaker",
        runtime_env={"env_vars": forwarded_env()},
        include_dashboard=False,
        logging_level=logging.WARNING,
        # JSON: every worker of the job logs JSON from its start, and the driver prints
        # their lines without the "(TenantActor pid=…)" prefix
        logging_config=ray.LoggingConfig(encoding="JSON", log_level="WARNING")
        if settings.log_format == "json"
        else None,
    )
    configure_logging(settings, "driver")  # again: ray.init set up its own handlers
    import serve_app as this  # by module name, so Ray pickles the deployment by reference

    application = this.build(settings)
    serve.start(
        http_options={"host": host, "port": proxy_port, **tls},
        logging_config=serve_logging(settings),
    )
    serve.run(application, name="circuitbreaker", route_prefix="/")
    if not _answers(f"{scheme}://{host}:{port}", verify):
        _say(
            f"warning: nothing answers on {host}:{port}; Serve's proxy is on {proxy_port}",
            logging.WARNING,
        )
    _say(f"Circuit Breaker listening on {scheme}://{host}:{port}  (data: {settings.data_dir})")
    _demo_tenant(f"{scheme}://{host}:{port}", settings, verify)
    sys.stdout.flush()

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    _say("shutting down")
    serve.shutdown()
    ray.shutdown()
    if local is not None:
        local.stop()


def _say(message: str, level: int = logging.INFO) -> None:
    """Tell the operator: printed in text mode, a log line with CB_LOG_FORMAT=json."""
    if json_logs():
        log.log(level, message)
    else:
        print(message)


def _tell_generated_token(settings: Settings) -> None:
    """Give the operator the admin token made for this run: printed in text mode; with JSON
    logs (which end up in log stores) written to `data_dir/admin-token` (mode 0600) instead."""
    from pathlib import Path

    token = os.environ["CB_ADMIN_TOKEN"]
    if not json_logs():
        print(f"CB_ADMIN_TOKEN={token}  (generated; set it to keep one)")
        return
    path = Path(settings.data_dir) / "admin-token"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(token + "\n", encoding="utf-8")
    log.warning("CB_ADMIN_TOKEN was generated; it is in %s (set it to keep one)", path)


def _start_local_model(settings: Settings) -> Any:
    """Serve the bundled local model when no provider key is set (`CB_LOCAL_MODEL`)."""
    from pathlib import Path

    from actors import local_model

    if not local_model.wanted(settings.load_config()):
        return None
    _say("no provider key is set: starting the bundled local model (SmolLM2-135M-Instruct)")
    sys.stdout.flush()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    try:
        server = local_model.start(log_path=Path(settings.data_dir) / "local-model.log")
    except Exception as exc:  # the gateway still serves; executions say no model is available
        _say(
            f"warning: the local model did not start ({exc}); set a provider key instead",
            logging.WARNING,
        )
        return None
    os.environ[local_model.URL_ENV] = server.url
    _say(f"local model at {server.url} (the last candidate of every virtual model)")
    return server


def _demo_tenant(url: str, settings: Settings, verify: ssl.SSLContext | bool = True) -> None:
    """Make (once) the demo tenant with the reference agents, unless CB_DEMO=off."""
    from pathlib import Path

    from cli import ensure_demo_tenant

    if os.environ.get("CB_DEMO", "on").lower() in ("off", "0", "false"):
        return
    try:
        demo = ensure_demo_tenant(
            url, os.environ["CB_ADMIN_TOKEN"], Path(settings.data_dir), verify=verify
        )
    except Exception as exc:  # the server still serves; only the demo is missing
        _say(f"warning: the demo tenant was not set up ({exc})", logging.WARNING)
        return
    _say(
        f"demo tenant {demo['tenant_id']} with {len(demo['agents'])} reference agents; "
        f"its API key is in {Path(settings.data_dir) / 'demo-tenant.json'}"
    )


def _answers(url: str, verify: ssl.SSLContext | bool = True, timeout_s: float = 30.0) -> bool:
    """Whether the gateway answers `url`/health within the timeout."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2, verify=verify).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.5)
    return False


if __name__ == "__main__":
    main()
