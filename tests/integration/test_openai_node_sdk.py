"""OpenAI's door from Node: the official `openai` npm SDK against `POST /v1/chat/completions`.

The checks live in `tests/node/openai_sdk_check.mjs`; this test scripts the emulator's replies,
runs the script and reads the whole completion back from history.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.client import SQLITE_ONLY, ApiClient

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
SCRIPT = NODE_DIR / "openai_sdk_check.mjs"


def _require_node_deps() -> None:
    """Skip (fail on CI) when the SDK is not installed in `tests/node/node_modules`."""
    if (NODE_DIR / "node_modules" / "openai" / "package.json").exists():
        return
    message = "the openai npm SDK is not installed in tests/node: run `make node-deps`"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@SQLITE_ONLY
def test_the_openai_node_sdk_completes_streams_errs_and_calls_tools(gateway: ApiClient) -> None:
    _require_node_deps()
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    tag = f"node-{uuid.uuid4().hex[:8]}"
    whole, chunks = "Hello from the gateway.", ["Str", "eamed ", "from ", "Node."]
    emu.script(f"whole {tag}", content=whole, prompt_tokens=12, completion_tokens=5)
    emu.script(f"stream {tag}", chunks=chunks, prompt_tokens=9, completion_tokens=4)
    emu.script(
        f"tools {tag}",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
        times=1,
    )
    emu.script(f"sunny-{tag}", content="The weather:", with_tool_results=True)

    env = {
        **os.environ,
        "CB_BASE_URL": gateway.cluster.url(gateway.backend) + "/v1",
        "CB_API_KEY": tenant.api_key,
        "CB_TAG": tag,
        "CB_EXPECT_WHOLE": whole,
        "CB_EXPECT_STREAM": "".join(chunks),
    }
    ran = subprocess.run(
        ["node", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.returncode == 0, f"stdout: {ran.stdout}\nstderr: {ran.stderr}"
    results = json.loads(ran.stdout.strip().splitlines()[-1])

    first, second = emu.requests_matching(f"tools {tag}")
    assert first.body["tools"][0]["function"]["name"] == "get_weather"
    assert second.body["messages"][-1]["role"] == "tool"

    view = gateway.ended_execution(tenant, results["execution_id"])
    assert view["kind"] == "chat_completion" and view["status"] == "completed", view
    assert view["usage"]["total_tokens"] > 0, view
