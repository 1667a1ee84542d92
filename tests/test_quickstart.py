"""The README's run command: `python serve_app.py` serves, answers, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import _free_port
from tests.emulator import ProviderEmulator

ROOT = Path(__file__).resolve().parent.parent


def test_run_command_serves_and_stops_cleanly(emulator: ProviderEmulator, tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CB_", "RAY_"))},
        "CB_DATA_DIR": str(tmp_path / "data"),
        "CB_PORT": str(port),
        "OPENAI_API_KEY": "quickstart-key",
        "OPENAI_BASE_URL": emulator.base_url,
    }
    log = open(tmp_path / "server.log", "w+")
    server = subprocess.Popen(
        [sys.executable, "serve_app.py"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            time.sleep(0.5)
        output = (tmp_path / "server.log").read_text()
        token = next(
            line.split("=", 1)[1].split()[0]
            for line in output.splitlines()
            if line.startswith("CB_ADMIN_TOKEN=")
        )
        admin = {"Authorization": f"Bearer {token}"}
        made = httpx.post(f"{base}/api/v1/admin/tenants", json={"name": "Q"}, headers=admin)
        assert made.status_code == 201, made.text
        tenant = made.json()
        headers = {
            "X-Tenant-ID": tenant["tenant"]["id"],
            "Authorization": f"Bearer {tenant['api_key']}",
        }
        agent = httpx.post(
            f"{base}/api/v1/agents", json={"name": "q", "model": "auto"}, headers=headers
        ).json()
        result = httpx.post(
            f"{base}/api/v1/agents/{agent['id']}/execute",
            json={"prompt": "quickstart ping"},
            headers=headers,
            timeout=30,
        ).json()
        assert result["status"] == "completed"
        assert result["response"]["content"] == "Echo: quickstart ping"
        sent = emulator.requests_matching("quickstart ping")[-1]
        assert sent.headers["authorization"] == "Bearer quickstart-key"
        assert (tmp_path / "data" / "events.sqlite").exists()
        assert "quickstart-key" not in output
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            raise
        log.close()
    assert code == 0
