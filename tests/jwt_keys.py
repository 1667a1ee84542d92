"""Signing material for the JWT tests: one secret and an RSA and an EC key in a JWKS."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = "test-jwt-secret-0123456789abcdef0123456789"
AUDIENCE = "circuit-breaker"
ISSUER = "https://idp.example.test"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def write_jwks(path: Path) -> str:
    """The public keys as a JWKS file; its path."""
    keys = []
    for kid, key, algorithm in (("rsa-1", RSA_KEY, jwt.algorithms.RSAAlgorithm),
                                ("ec-1", EC_KEY, jwt.algorithms.ECAlgorithm)):  # fmt: skip
        jwk = json.loads(algorithm.to_jwk(key.public_key()))
        keys.append({**jwk, "kid": kid, "use": "sig"})
    path.write_text(json.dumps({"keys": keys}))
    return str(path)


def token(tenant_id: str, alg: str = "HS256", **claims: Any) -> str:
    """A token for `tenant_id`, valid for a minute unless `claims` say otherwise."""
    now = time.time()
    body = {"sub": "alice", "tenant_id": tenant_id, "aud": AUDIENCE, "iss": ISSUER,
            "exp": now + 60, "nbf": now - 1, "scope": "agents:read agents:write agents:execute",
            **claims}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    if alg == "HS256":
        return jwt.encode(body, SECRET, algorithm="HS256")
    key, kid = (RSA_KEY, "rsa-1") if alg == "RS256" else (EC_KEY, "ec-1")
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})
