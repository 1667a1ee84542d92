"""`python serve_app.py` as a child process for tests that need a gateway of their own (the
quick start, TLS): started with exactly the environment given, stopped with SIGTERM, and
required to exit cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
