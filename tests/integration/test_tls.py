"""TLS on the gateway's own port: `python serve_app.py` (the default, direct ingress mode)
with CB_TLS_CERT/CB_TLS_KEY from a throwaway CA serves HTTPS, and httpx, the Python SDK,
the `openai` client and the TypeScript SDK connect given the CA file."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import trustme
from circuit_breaker import Client

from tests.emulator import ProviderEmulator
from tests.support.cluster import serve_app_port
from tests.support.server_process import ROOT, environ_without_ours, serve_app

TS_SDK = ROOT / "sdk" / "typescript" / "dist" / "index.js"
ADMIN_TOKEN = "tls-admin-token"


@pytest.fixture(scope="module")
def tls_gateway(
    emulator: ProviderEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Path]]:
    """The gateway on https://127.0.0.1:PORT: its URL, the CA's PEM file and the log."""
    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca_file, cert_file, key_file = tmp / "ca.pem", tmp / "cert.pem", tmp / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_pem.write_to_path(str(key_file))
    cert_file.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    port = serve_app_port()
    environ = {
        **environ_without_ours("SSL_"),
        "CB_DATA_DIR": str(tmp / "data"),
        "CB_PORT": str(port),
        "CB_ADMIN_TOKEN": ADMIN_TOKEN,
        "CB_DEMO": "off",  # its calls trust the same context as the check below
        "CB_TLS_CERT": str(cert_file),
        "CB_TLS_KEY": str(key_file),
        "OPENAI_API_KEY": "tls-key",
        "OPENAI_BASE_URL": emulator.base_url,
    }
    log_path = tmp / "server.log"
    base = f"https://127.0.0.1:{port}"
    with serve_app(environ, log_path) as server:
        deadline = time.monotonic() + 180
        # printed once its own /health check over HTTPS answered
        while f"listening on {base}" not in log_path.read_text():
            assert server.poll() is None, log_path.read_text()[-3000:]
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
        yield base, ca_file, log_path


def _trusting(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture(scope="module")
def tenant(tls_gateway: tuple[str, Path, Path]) -> dict[str, str]:
    """A tenant made over HTTPS: its id and API key."""
    base, ca_file, _ = tls_gateway
    made = httpx.post(
        f"{base}/api/v1/admin/tenants",
        json={"name": "TLS"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        verify=_trusting(ca_file),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    return {"id": made.json()["tenant"]["id"], "api_key": made.json()["api_key"]}


def test_the_gateway_serves_https_only(
    tls_gateway: tuple[str, Path, Path],
) -> None:
    base, ca_file, log_path = tls_gateway
    output = log_path.read_text()
    assert "warning: nothing answers" not in output, output[-3000:]
    assert httpx.get(f"{base}/health", verify=_trusting(ca_file), timeout=10).status_code == 200
    # HTTP/1.1 only: offered h2 by ALPN, Serve's uvicorn does not take it
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_alpn_protocols(["h2", "http/1.1"])
    host, port = base.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname=host) as tls:
            assert tls.selected_alpn_protocol() in (None, "http/1.1")
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA
        httpx.get(f"{base}/health", timeout=10)
    with pytest.raises(httpx.HTTPError):  # nothing in clear text on the port
        httpx.get(base.replace("https://", "http://") + "/health", timeout=10)


def test_the_python_sdk_connects_with_the_ca_file(
    tls_gateway: tuple[str, Path, Path], tenant: dict[str, str]
) -> None:
    base, ca_file, _ = tls_gateway
    with Client(base, tenant["id"], tenant["api_key"], verify=str(ca_file)) as client:
        agent = client.agents.create(name="tls", model="gpt-4o-mini")
        assert [a.id for a in client.agents.list()] == [agent.id]
        reply = client.chat_completion(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "tls sdk ping"}]
        )
        assert reply["choices"][0]["message"]["content"] == "Echo: tls sdk ping"


def test_the_openai_client_connects_with_the_ca_file(
    tls_gateway: tuple[str, Path, Path], tenant: dict[str, str]
) -> None:
    base, ca_file, _ = tls_gateway
    with httpx.Client(verify=_trusting(ca_file)) as http:
        client = openai.OpenAI(
            base_url=f"{base}/v1", api_key=tenant["api_key"], http_client=http, max_retries=0
        )
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "tls openai ping"}]
        )
        assert reply.choices[0].message.content == "Echo: tls openai ping"
        chunks = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "tls openai stream"}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Echo: tls openai stream"


NODE_CHECK = """
import { Client } from %s;
const client = new Client({
  baseUrl: process.env.CB_BASE_URL, tenantId: process.env.CB_TENANT_ID,
  apiKey: process.env.CB_API_KEY, mode: "rest", retry: { maxRetries: 0 },
});
const agents = await client.agents.list();
console.log(JSON.stringify({ agents: agents.length }));
"""


def test_the_typescript_sdk_connects_with_node_extra_ca_certs(
    tls_gateway: tuple[str, Path, Path], tenant: dict[str, str], tmp_path: Path
) -> None:
    if not (shutil.which("node") and TS_SDK.exists()):
        pytest.skip("node or the built TypeScript SDK (make sdk-ts) is missing")
    base, ca_file, _ = tls_gateway
    script = tmp_path / "check.mjs"
    script.write_text(NODE_CHECK % repr(TS_SDK.as_uri()))
    env = {
        **os.environ,
        "CB_BASE_URL": base,
        "CB_TENANT_ID": tenant["id"],
        "CB_API_KEY": tenant["api_key"],
    }

    def run(**extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["node", str(script)], env={**env, **extra}, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    trusted = run(NODE_EXTRA_CA_CERTS=str(ca_file))
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert '"agents":' in trusted.stdout
    untrusted = run()
    assert untrusted.returncode != 0
