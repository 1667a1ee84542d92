"""JWT bearer tokens, the second way in beside API keys.

HS256 tokens are checked with `CB_JWT_SECRET`; RS256 and ES256 tokens with the key named by
their `kid` in the JWKS at `CB_JWT_JWKS` (a file path or an https URL, cached). `exp` is
required; `nbf`, and `aud`/`iss` when `CB_JWT_AUDIENCE`/`CB_JWT_ISSUER` are set, are checked.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from domain.keys import PREFIX

LEEWAY_S = 5.0  # clock skew tolerated on exp and nbf
ASYMMETRIC = ("RS256", "ES256")


class TokenRejected(Exception):
    """Why a token was refused, in words safe to show and record."""


@dataclass(frozen=True)
class JwtSettings:
    secret: str
    jwks: str
    audience: str | None
    issuer: str | None
    tenant_claim: str

    @classmethod
    def from_env(cls) -> JwtSettings:
        return cls(
            secret=os.environ.get("CB_JWT_SECRET", ""),
            jwks=os.environ.get("CB_JWT_JWKS", ""),
            audience=os.environ.get("CB_JWT_AUDIENCE") or None,
            issuer=os.environ.get("CB_JWT_ISSUER") or None,
            tenant_claim=os.environ.get("CB_JWT_TENANT_CLAIM") or "tenant_id",
        )


def looks_like_jwt(token: str) -> bool:
    return not token.startswith(PREFIX) and token.count(".") == 2


_url_clients: dict[str, jwt.PyJWKClient] = {}
_file_sets: dict[tuple[str, float], jwt.PyJWKSet] = {}


async def _signing_key(source: str, kid: str | None) -> Any:
    if source.startswith(("https://", "http://")):
        client = _url_clients.setdefault(source, jwt.PyJWKClient(source, lifespan=300))
        keys = await asyncio.to_thread(client.get_signing_keys)  # cached; fetched off-loop
    else:
        path = Path(source)
        stamp = (source, path.stat().st_mtime)
        if stamp not in _file_sets:
            _file_sets.clear()
            _file_sets[stamp] = jwt.PyJWKSet.from_json(path.read_text(encoding="utf-8"))
        keys = _file_sets[stamp].keys
    for key in keys:
        if kid is None or key.key_id == kid:
            return key.key
    raise TokenRejected("no key in the JWKS matches its kid")


async def verify(token: str, settings: JwtSettings) -> dict[str, Any]:
    """The token's claims once its signature and times (and audience, issuer) hold."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise TokenRejected("malformed token") from None
    alg = header.get("alg")
    if alg == "HS256" and settings.secret:
        key: Any = settings.secret
    elif alg in ASYMMETRIC and settings.jwks:
        key = await _signing_key(settings.jwks, header.get("kid"))
    else:
        raise TokenRejected(f"algorithm {alg!r} is not accepted here")
    required = (
        ["exp"] + (["aud"] if settings.audience else []) + (["iss"] if settings.issuer else [])
    )
    try:
        return jwt.decode(
            token,
            key,
            algorithms=[alg],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY_S,
            options={"require": required, "verify_aud": settings.audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise TokenRejected("expired") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected("not valid yet") from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("wrong audience") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("wrong issuer") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected("bad signature") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected(f"missing claim {exc.claim!r}") from None
    except jwt.InvalidTokenError:
        raise TokenRejected("invalid token") from None
