"""API keys: `cbk_` plus 256 random bits; only the SHA-256 of a key is ever stored."""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "cbk_"


def new_api_key() -> str:
    """A fresh, recognisable API key (shown to its owner once)."""
    return PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The stored form of a key (keys carry 256 random bits, so a fast hash suffices)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """A short, non-secret reminder of which key this is (`cbk_AbCd…`)."""
    return key[: len(PREFIX) + 4] + "…"
