"""The README's run command: `python serve_app.py` serves, answers, and stops on SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.emulator import ProviderEmulator
from tests.support.server_process import running_server, tenant_and_agent


def test_run_command_serves_and_stops_cleanly(emulator: ProviderEmulator, tmp_path: Path) -> None:
    with running_server(
        tmp_path, OPENAI_API_KEY="quickstart-key", OPENAI_BASE_URL=emulator.base_url, CB_DEMO="off"
    ) as (base, admin, log_path):
        headers, agent = tenant_and_agent(base, admin, "auto")
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
        output = Path(log_path).read_text()
        assert "quickstart-key" not in output
        assert "local model" not in output  # a key is set: no local model


def test_without_any_key_the_run_command_serves_the_bundled_local_model(tmp_path: Path) -> None:
    """A new user's first execution: no key at all, real generated text, real token counts."""
    with running_server(tmp_path) as (base, admin, log_path):
        assert "starting the bundled local model" in Path(log_path).read_text()
        headers, agent = tenant_and_agent(base, admin, "cb:smart-chat")
        execute = f"{base}/api/v1/agents/{agent['id']}/execute"
        body = {"prompt": "What is the capital of France?", "parameters": {"max_tokens": 24}}
        result = httpx.post(execute, json=body, headers=headers, timeout=120).json()
        assert result.get("status") == "completed", result
        assert result["metadata"]["model_resolved"] == "smollm2-135m"
        assert result["metadata"]["provider_model"]  # as the server named itself
        skipped = {c["model"]: c["skipped"] for c in result["metadata"]["routing"]["candidates"]}
        assert skipped["gpt-4.1-mini"] == "provider openai not configured"
        assert result["response"]["content"].strip()
        usage = result["usage"]
        assert usage["prompt_tokens"] > 5 and 0 < usage["completion_tokens"] <= 24
        assert usage["estimated"] is False and usage["cost_usd"] == 0

        events = []
        with httpx.stream(
            "POST", execute + "/stream", json=body, headers=headers, timeout=120
        ) as reply:
            assert reply.status_code == 200
            events = [line[7:] for line in reply.iter_lines() if line.startswith("event: ")]
            assert events[-1] == "execution_complete", events
        assert events.count("content_chunk") >= 2
        stored = httpx.get(
            f"{base}/api/v1/executions?agent_id={agent['id']}", headers=headers
        ).json()
        streamed = next(e for e in stored["executions"] if e["status"] == "completed")
        assert streamed["usage"]["completion_tokens"] > 0

        demo = json.loads((tmp_path / "data" / "demo-tenant.json").read_text())
        demo_headers = {
            "X-Tenant-ID": demo["tenant_id"],
            "Authorization": f"Bearer {demo['api_key']}",
        }
        agents = httpx.get(f"{base}/api/v1/agents", headers=demo_headers, timeout=30).json()
        by_name = {a["name"]: a["id"] for a in agents["agents"]}
        assert len(by_name) == 4
        math = httpx.post(
            f"{base}/api/v1/agents/{by_name['Mathematical Reasoning Specialist']}/execute",
            json=body, headers=demo_headers, timeout=120,
        ).json()  # fmt: skip
        assert math.get("status") == "completed" and math["response"]["content"].strip(), math
        # the tool-using agents need a model that takes tools: none is configured without a
        # key, so a clear refusal that says why, not a silent run without the tools
        estate = httpx.post(
            f"{base}/api/v1/agents/{by_name['Real Estate Investment Analyzer']}/execute",
            json=body, headers=demo_headers, timeout=120,
        )  # fmt: skip
        assert estate.status_code == 503
        error = estate.json()["error"]
        assert (
            error["type"] == "no_model_available"
            and "smollm2-135m: lacks tools" in error["message"]
        )
