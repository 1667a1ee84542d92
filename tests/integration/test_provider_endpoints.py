"""Several endpoints of one provider (tests/config.yaml: `pool`, two keys 3:1, and `probed`,
one endpoint dead and found so by active probes), and a preset of the default
configuration (Groq) switched on by its key."""

from __future__ import annotations

import time
import uuid
from collections import Counter

from tests.support.client import SQLITE_ONLY, ApiClient

pytestmark = SQLITE_ONLY  # provider behaviour: the storage backend cannot change it

KEYS = {"Bearer test-pool-east-key": "east", "Bearer test-pool-west-key": "west"}


def marker() -> str:
    return f"ep-{uuid.uuid4().hex[:8]}"


def test_a_pool_of_keys_shares_the_traffic_by_weight(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="pool-chat")
    tag = marker()

    results = [gateway.execute(tenant, agent["id"], f"{tag} {i}").json() for i in range(8)]

    assert all(r["status"] == "completed" for r in results), results
    sent = Counter(KEYS[r.headers["authorization"]] for r in emu.requests_matching(tag))
    assert sent == {"east": 6, "west": 2}  # smooth weighted round robin: exact shares
    recorded = Counter(r["metadata"]["attempt_log"][0]["endpoint"] for r in results)
    assert recorded == sent
    assert all(r["metadata"]["provider"] == "pool" for r in results)


def test_a_failed_endpoint_fails_over_to_the_other_before_any_fallback(
    gateway: ApiClient,
) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="pool-chat")
    tag = marker()
    emu.script(tag, content="from the other key")
    emu.script(tag, status=500, times=1)  # the provider's max_retries is 0

    result = gateway.execute(tenant, agent["id"], tag).json()

    assert result["status"] == "completed", result
    assert result["response"]["content"] == "from the other key"
    first, second = result["metadata"]["attempt_log"]
    assert first["error"] == "provider_error" and second.get("error") is None
    assert {first["endpoint"], second["endpoint"]} == {"east", "west"}
    assert first["model"] == second["model"] == "pool-chat"
    keys = [KEYS[r.headers["authorization"]] for r in emu.requests_matching(tag)]
    assert keys == [first["endpoint"], second["endpoint"]]


def _probes(gateway: ApiClient, interval_s: float) -> None:
    """Set `probed`'s probe interval at runtime, as an operator does (0: off)."""
    reply = gateway.http.put(
        "/api/v1/admin/config/providers/probed",
        json={"probe_interval_s": interval_s},
        headers=gateway.admin,
    )
    assert reply.status_code == 200, reply.text


def test_active_probes_find_a_dead_endpoint_before_any_request(gateway: ApiClient) -> None:
    headers = gateway.new_tenant().headers()
    _probes(gateway, 0.5)  # off in the test configuration: turned on at runtime
    try:
        deadline = time.monotonic() + 30
        while True:  # nothing executes on `probed`: only its probes can open the breaker
            view = gateway.http.get("/api/v1/providers/probed", headers=headers).json()
            endpoints = {e["name"]: e for e in view.get("endpoints", [])}
            if endpoints and endpoints["dead"]["health"]["breaker"] == "open":
                break
            assert time.monotonic() < deadline, view
            time.sleep(0.25)
    finally:
        _probes(gateway, 0)
        time.sleep(1)  # a probe already under way lands before the next test counts requests
    assert view["balance"] == "least_busy"
    assert endpoints["dead"]["id"] == "probed:dead" and endpoints["alive"]["id"] == "probed:alive"
    dead, alive = endpoints["dead"]["health"], endpoints["alive"]["health"]
    assert dead["healthy"] is False and dead["last_error"] == "provider_error"
    assert alive["breaker"] == "closed" and alive["healthy"] is True and alive["last_check"]
    assert view["health"]["healthy"] is True and view["health"]["breaker"] == "closed"

    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="probed-chat")
    results = [gateway.execute(tenant, agent["id"], marker()).json() for _ in range(4)]

    assert all(r["status"] == "completed" for r in results), results
    attempts = [a for r in results for a in r["metadata"]["attempt_log"]]
    assert [a["endpoint"] for a in attempts] == ["alive"] * 4  # no user ever hit the dead one


def test_a_preset_is_on_once_its_key_is_set(gateway: ApiClient) -> None:
    emu = gateway.cluster.emulator
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant, model="groq-llama-3.3-70b")
    tag = marker()
    emu.script(tag, content="fast", prompt_tokens=1000, completion_tokens=100)

    result = gateway.execute(tenant, agent["id"], tag).json()

    assert result["status"] == "completed", result
    assert result["metadata"]["provider"] == "groq"
    assert result["usage"]["cost_usd"] == round(1000 * 0.59 / 1e6 + 100 * 0.79 / 1e6, 10)
    sent = emu.requests_matching(tag)[0]
    assert sent.headers["authorization"] == "Bearer test-groq-key"
    assert sent.body["model"] == "llama-3.3-70b-versatile"
    listed = gateway.http.get("/api/v1/providers", headers=tenant.headers()).json()
    ids = {p["id"] for p in listed["providers"]}
    assert "groq" in ids and not ids & {"together", "deepseek", "mistral", "vllm", "lmstudio"}
