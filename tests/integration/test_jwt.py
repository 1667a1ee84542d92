"""JWT bearer tokens (HS256 secret, RS256/ES256 from a JWKS) on REST, SSE, GraphQL and the
OpenAI-compatible routes: the same tenant binding and scopes as API keys."""

from __future__ import annotations

import time

import jwt
import pytest

from tests import jwt_keys
from tests.support.client import SQLITE_ONLY, ApiClient
from tests.support.graphql import graphql

pytestmark = SQLITE_ONLY  # the ingress checks tokens; the storage backend plays no part


def _bearer(tenant_id: str, token: str) -> dict[str, str]:
    return {"X-Tenant-ID": tenant_id, "Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("alg", ["HS256", "RS256", "ES256"])
def test_a_valid_token_acts_for_its_tenant_with_its_scopes(gateway: ApiClient, alg: str) -> None:
    tenant = gateway.new_tenant()
    headers = _bearer(tenant.id, jwt_keys.token(tenant.id, alg))
    made = gateway.http.post(
        "/api/v1/agents", json={"name": "J", "model": "gpt-4o-mini"}, headers=headers
    )
    assert made.status_code == 201, made.text
    run = gateway.http.post(
        f"/api/v1/agents/{made.json()['id']}/execute", json={"prompt": "jwt"}, headers=headers
    )
    assert run.status_code == 200 and run.json()["status"] == "completed"
    listed = graphql(gateway, headers, "{ agents { id name } }")
    assert listed["data"]["agents"] == [{"id": made.json()["id"], "name": "J"}]
    models = gateway.http.get(
        "/v1/models", headers={"Authorization": f"Bearer {jwt_keys.token(tenant.id, alg)}"}
    )
    assert models.status_code == 200 and models.json()["object"] == "list"


def test_bad_tokens_are_401_and_say_why(gateway: ApiClient) -> None:
    tenant = gateway.new_tenant()
    now = time.time()
    forged = jwt.encode({"tenant_id": tenant.id, "exp": now + 60, "aud": jwt_keys.AUDIENCE,
                         "iss": jwt_keys.ISSUER}, jwt_keys.OTHER_RSA_KEY, algorithm="RS256",
                        headers={"kid": "rsa-1"})  # fmt: skip
    unsigned = jwt.encode({"tenant_id": tenant.id, "exp": now + 60}, None, algorithm="none")
    cases = {
        "expired": jwt_keys.token(tenant.id, exp=now - 60),
        "not valid yet": jwt_keys.token(tenant.id, nbf=now + 300),
        "wrong audience": jwt_keys.token(tenant.id, aud="someone-else"),
        "wrong issuer": jwt_keys.token(tenant.id, "ES256", iss="https://evil.test"),
        "bad signature": forged,
        "missing claim 'exp'": jwt_keys.token(tenant.id, exp=None),
        "algorithm 'none' is not accepted": unsigned,
        "malformed token": "abc.def.ghi",
    }
    for reason, token in cases.items():
        reply = gateway.http.get("/api/v1/agents", headers=_bearer(tenant.id, token))
        assert reply.status_code == 401, (reason, reply.text)
        error = reply.json()["error"]
        assert error["type"] == "authentication_failed" and reason in error["message"], reason
    wrong_secret = jwt.encode(
        {"tenant_id": tenant.id, "exp": now + 60, "aud": jwt_keys.AUDIENCE,
         "iss": jwt_keys.ISSUER}, "not-the-secret-but-long-enough-to-sign", algorithm="HS256",
    )  # fmt: skip
    reply = gateway.http.get("/api/v1/agents", headers=_bearer(tenant.id, wrong_secret))
    assert reply.status_code == 401 and "bad signature" in reply.text


def test_a_token_binds_its_tenant_and_its_scopes(gateway: ApiClient) -> None:
    a, b = gateway.new_tenant(), gateway.new_tenant()
    crossed = gateway.http.get("/api/v1/agents", headers=_bearer(a.id, jwt_keys.token(b.id)))
    assert crossed.status_code == 403 and crossed.json()["error"]["type"] == "permission_denied"
    reader = _bearer(a.id, jwt_keys.token(a.id, scope="agents:read"))
    assert gateway.http.get("/api/v1/agents", headers=reader).status_code == 200
    denied = gateway.http.post(
        "/api/v1/agents", json={"name": "n", "model": "auto"}, headers=reader
    )
    assert denied.status_code == 403 and "agents:write" in denied.json()["error"]["message"]
    no_tenant = gateway.http.get("/api/v1/agents", headers=_bearer(a.id, jwt_keys.token("acme")))
    assert no_tenant.status_code == 401 and "tenant_id" in no_tenant.json()["error"]["message"]
