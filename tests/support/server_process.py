"""`python serve_app.py` as a child process for tests that need a gateway of their own (the
quick start, TLS): started with exactly the environment given, stopped with SIGTERM, and
required to exit cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.cluster import serve_app_port

ROOT = Path(__file__).resolve().parents[2]

# this project's, Ray's and every provider's (presets included) variables: a server of a test
# of its own starts with none of them from the test process, only those the test gives
OWN_ENV_PREFIXES = (
    "CB_", "RAY_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "AZURE_", "OLLAMA_", "GROQ_", "TOGETHER_",
    "DEEPSEEK_", "MISTRAL_", "OPENROUTER_", "VLLM_", "LMSTUDIO_", "LLAMACPP_",
)  # fmt: skip


def environ_without_ours(*more: str) -> dict[str, str]:
    """This process's environment without `OWN_ENV_PREFIXES` (and `more` prefixes)."""
    prefixes = OWN_ENV_PREFIXES + more
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


@contextmanager
def serve_app(environ: dict[str, str], log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The server process, its output in `log_path`; after the block it must exit 0."""
    log = open(log_path, "w+")
    server = subprocess.Popen(
        [sys.executable, "serve_app.py"],
        cwd=ROOT,
        env=environ,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
        finally:
            log.close()
    assert code == 0, log_path.read_text()[-3000:]


def tenant_and_agent(
    base: str, admin: dict[str, str], model: str, timeout_s: float = 30
) -> tuple[dict[str, str], dict[str, Any]]:
    """A new tenant's headers and an agent of it on `model`, made through the admin API of
    the server at `base` (each call may take `timeout_s`: a tenant's first actor starts)."""
    import httpx

    made = httpx.post(
        f"{base}/api/v1/admin/tenants", json={"name": "Q"}, headers=admin, timeout=timeout_s
    )
    assert made.status_code == 201, made.text
    tenant = made.json()
    headers = {
        "X-Tenant-ID": tenant["tenant"]["id"],
        "Authorization": f"Bearer {tenant['api_key']}",
    }
    agent = httpx.post(
        f"{base}/api/v1/agents", json={"name": "q", "model": model}, headers=headers,
        timeout=timeout_s,
    )  # fmt: skip
    assert agent.status_code == 201, agent.text
    return headers, agent.json()


@contextmanager
def running_server(tmp_path: Path, **env: str) -> Iterator[tuple[str, dict[str, str], str]]:
    """`python serve_app.py` with only `env` set: yields its URL, admin headers and log path;
    stops it with SIGTERM afterwards and checks it exited cleanly."""
    port = serve_app_port()
    environ = {
        **environ_without_ours(),
        "CB_DATA_DIR": str(tmp_path / "data"),
        "CB_PORT": str(port),
        **env,
    }
    log_path = tmp_path / "server.log"
    with serve_app(environ, log_path) as server:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log_path.read_text()[-3000:]
            time.sleep(0.5)
        while "demo tenant" not in log_path.read_text() and env.get("CB_DEMO") != "off":
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)  # the demo tenant is set up just after the server answers
        token = env.get("CB_ADMIN_TOKEN") or next(
            line.split("=", 1)[1].split()[0]
            for line in log_path.read_text().splitlines()
            if line.startswith("CB_ADMIN_TOKEN=")
        )
        yield base, {"Authorization": f"Bearer {token}"}, str(log_path)
