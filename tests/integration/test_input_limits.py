"""Input limits: every oversized or malformed request is a clear 4xx, never a 5xx."""

from __future__ import annotations

from tests.support.client import SQLITE_ONLY, ApiClient

pytestmark = SQLITE_ONLY  # the ingress checks these before any storage is involved


def test_oversized_deep_and_malformed_bodies_are_clear_4xx(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    agent = gateway.new_agent(tenant)
    execute = f"/api/v1/agents/{agent['id']}/execute"
    headers = tenant.headers()

    big = gateway.http.post(execute, json={"prompt": "x" * (5 * 1024 * 1024)}, headers=headers)
    assert big.status_code == 413 and big.json()["error"]["type"] == "payload_too_large"

    chunked = gateway.http.post(
        execute, content=(b"x" * 65536 for _ in range(80)),
        headers={**headers, "content-type": "application/json"},
    )  # fmt: skip
    assert chunked.status_code == 413, chunked.text

    def refused(body: object, *words: str) -> None:
        reply = gateway.http.post(execute, json=body, headers=headers)
        assert reply.status_code == 400, reply.text
        error = reply.json()["error"]
        assert error["type"] == "invalid_request"
        for word in words:
            assert word in error["message"], (word, error["message"])

    refused({"prompt": "x", "context": [{"role": "user", "content": "x"}] * 1001},
            "context", "at most 1000 messages")  # fmt: skip
    deep: dict = {}
    cursor = deep
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]
    refused({"prompt": "x", "metadata": deep}, "metadata", "nested deeper than 32")
    refused({"prompt": "x", "temprature": 0.2}, "temprature", "Extra inputs")
    refused({"prompt": "x", "tools": ["t" * 65]}, "tools")
    nested = gateway.http.post(
        execute, content=b"[" * 50000 + b"]" * 50000,
        headers={**headers, "content-type": "application/json"},
    )  # fmt: skip
    assert nested.status_code == 400 and nested.json()["error"]["type"] == "invalid_request"

    bad_tenant = gateway.http.get(
        "/api/v1/agents", headers={**headers, "X-Tenant-ID": "Robert'); DROP TABLE"}
    )
    assert bad_tenant.status_code == 400
    assert bad_tenant.json()["error"]["type"] == "missing_tenant"
    assert gateway.execute(tenant, agent["id"], "still fine").status_code == 200
