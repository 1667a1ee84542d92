"""Provider transport: plain http:// only to loopback unless a provider opts in, and
certificates verified against the default roots plus `CB_PROVIDER_CA_BUNDLE`."""

from __future__ import annotations

import contextlib
import http.server
import importlib
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
import trustme
import yaml

import cli
from actors import http_client
from actors.settings import DEFAULT_CONFIG, configured_providers, provider_base_url
from domain.config import ProviderSpec, is_loopback, parse_config
from domain.config_check import config_problems
from domain.errors import ProviderError


def _config(**provider: object) -> dict[str, object]:
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["providers"]["openai"].update(provider)
    return data


def test_plain_http_to_a_remote_host_is_refused_with_its_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _config(base_url="http://api.example.com/v1")
    assert config_problems(data) == [
        "providers.openai: base_url http://api.example.com: plain http to a host other than "
        "loopback is refused; use https:// or set the provider's allow_insecure_http: true"
    ]
    path = tmp_path / "insecure.yaml"
    path.write_text(yaml.safe_dump(data))
    assert cli.main(["validate-config", str(path)]) == 1
    assert "providers.openai: base_url http://api.example.com: plain http" in (
        capsys.readouterr().out
    )
    with pytest.raises(ValueError, match="allow_insecure_http"):
        parse_config(data)


def test_allow_insecure_http_opts_in() -> None:
    data = _config(base_url="http://api.example.com/v1", allow_insecure_http=True)
    assert config_problems(data) == []
    assert parse_config(data).providers["openai"].allow_insecure_http


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8090/v1",
        "http://127.3.4.5/v1",
        "http://localhost:11434",
        "http://LOCALHOST:1",
        "http://[::1]:8080/v1",
        "https://api.example.com/v1",
    ],
)
def test_loopback_http_and_any_https_are_accepted(url: str) -> None:
    assert config_problems(_config(base_url=url)) == []


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "192.168.1.2", "example.com", "localhost.example.com", "::2"]
)
def test_other_hosts_are_not_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_the_shipped_configuration_is_accepted() -> None:
    assert config_problems(yaml.safe_load(DEFAULT_CONFIG.read_text())) == []


def test_an_environment_override_to_remote_plain_http_is_refused_at_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = parse_config(yaml.safe_load(DEFAULT_CONFIG.read_text()))
    spec = config.providers["openai"]
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://api.example.com/v1")
    with pytest.raises(ProviderError, match=r"OPENAI_BASE_URL=http://api\.example\.com: plain"):
        provider_base_url(spec)
    assert "openai" not in configured_providers(config)

    monkeypatch.setenv("OLLAMA_HOST", "gpu-box:11434")  # host:port, read as http://
    with pytest.raises(ProviderError, match="OLLAMA_HOST=http://gpu-box"):
        provider_base_url(config.providers["ollama"])
    assert "ollama" not in configured_providers(config)

    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    assert provider_base_url(spec) == "http://127.0.0.1:9/v1"
    assert "openai" in configured_providers(config)

    opted = ProviderSpec(
        type="openai",
        base_url="https://x",
        base_url_env="OPENAI_BASE_URL",
        allow_insecure_http=True,
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://api.example.com/v1")
    assert provider_base_url(opted) == "http://api.example.com/v1"


# ------------------------------------------------------------------ certificate checks


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on 127.0.0.1 whose certificate a throwaway CA signed: its URL and the
    CA's PEM file."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca_file
    finally:
        server.shutdown()
        server.server_close()


@contextlib.asynccontextmanager
async def _fresh_client() -> AsyncIterator[httpx.AsyncClient]:
    """The process's shared client, built now from the environment as it is."""
    http_client._client = None
    client = http_client.shared_client()
    try:
        yield client
    finally:
        await client.aclose()
        http_client._client = None


@pytest.fixture
def default_roots(monkeypatch: pytest.MonkeyPatch) -> None:
    """No root or bundle from the environment: the default roots only."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", http_client.CA_BUNDLE_ENV):
        monkeypatch.delenv(name, raising=False)


async def _get(url: str) -> httpx.Response:
    async with _fresh_client() as client:
        return await client.get(url, timeout=10)


@pytest.mark.usefixtures("default_roots")
async def test_provider_calls_verify_certificates_and_trust_the_ca_bundle(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = https_server
    with pytest.raises(httpx.HTTPError):  # an unknown CA: refused
        await _get(url)

    monkeypatch.setenv(http_client.CA_BUNDLE_ENV, str(ca_file))
    context = http_client.provider_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    reply = await _get(url)
    assert reply.status_code == 200 and reply.text == "ok"


async def _post(url: str) -> bytes:
    """The provider call's own path (`post_json`: the lean connections, not httpx's)."""
    async with _fresh_client() as client:
        reply = await http_client.post_json(client, url, {}, {}, httpx.Timeout(10.0))
        body = await reply.aread()
        await reply.aclose()
        return body


@pytest.mark.usefixtures("default_roots")
async def test_the_provider_call_verifies_certificates_and_trusts_the_ca_bundle(
    https_server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, ca_file = https_server
    with pytest.raises(httpx.ConnectError) as refused:  # an unknown CA: refused
        await _post(url)
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)

    monkeypatch.setenv(http_client.CA_BUNDLE_ENV, str(ca_file))
    assert await _post(url) == b"ok"


def test_an_unreadable_ca_bundle_says_which_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(http_client.CA_BUNDLE_ENV, str(tmp_path / "missing.pem"))
    with pytest.raises(RuntimeError, match="CB_PROVIDER_CA_BUNDLE="):
        http_client.provider_ssl_context()


def test_the_python_sdk_takes_a_ca_file(https_server: tuple[str, Path]) -> None:
    from circuit_breaker import Client

    url, ca_file = https_server
    with Client(url, "t", "k", verify=str(ca_file)) as client:
        assert client.config.ssl_context is not None
        assert client.config.ws_ssl() == {"ssl": client.config.ssl_context}
        assert client._runner.http.get("/").text == "ok"
    with Client(url, "t", "k") as client, pytest.raises(httpx.ConnectError):
        client._runner.http.get("/")
    with pytest.raises(ValueError, match="verify=False is refused"):
        Client(url, "t", "k", verify=False)


# ------------------------------------------------------------------ the gateway's own port


@pytest.fixture
def serve_app(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """`serve_app`, imported without building the app or setting Serve's variables."""
    monkeypatch.setenv("CB_BUILD_ON_IMPORT", "0")
    monkeypatch.setenv("CB_SERVE_MODE", "proxy")
    return importlib.import_module("serve_app")


def test_gateway_tls_options_come_in_pairs_of_readable_files(
    serve_app: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CB_TLS_CERT", raising=False)
    monkeypatch.delenv("CB_TLS_KEY", raising=False)
    assert serve_app.tls_options() == {}
    monkeypatch.setenv("CB_TLS_CERT", str(tmp_path / "cert.pem"))
    with pytest.raises(SystemExit, match="set together"):
        serve_app.tls_options()
    monkeypatch.setenv("CB_TLS_KEY", str(tmp_path / "key.pem"))
    with pytest.raises(SystemExit, match=r"CB_TLS_CERT=.*no such readable file"):
        serve_app.tls_options()
    (tmp_path / "cert.pem").write_text("x")
    (tmp_path / "key.pem").write_text("x")
    assert serve_app.tls_options() == {
        "ssl_certfile": str(tmp_path / "cert.pem"),
        "ssl_keyfile": str(tmp_path / "key.pem"),
    }


def test_the_run_command_trusts_its_own_leaf_certificate(
    serve_app: ModuleType, tmp_path: Path
) -> None:
    """`python serve_app.py` checks /health and makes the demo tenant over HTTPS trusting
    just the certificate it serves (not its CA), whatever address it calls."""
    ca = trustme.CA()
    cert = ca.issue_cert("gateway.example.com")  # not the address called
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    leaf = tmp_path / "cert.pem"
    leaf.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{server.server_address[1]}/"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CB_TLS_CERT", str(leaf))
            context = serve_app._own_tls_context()
        assert httpx.get(url, verify=context, timeout=10).text == "ok"
        other = trustme.CA().issue_cert("127.0.0.1")  # another certificate: refused
        other_file = tmp_path / "other.pem"
        other.cert_chain_pems[0].write_to_path(str(other_file))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CB_TLS_CERT", str(other_file))
            with pytest.raises(httpx.ConnectError):
                httpx.get(url, verify=serve_app._own_tls_context(), timeout=10)
    finally:
        server.shutdown()
        server.server_close()
