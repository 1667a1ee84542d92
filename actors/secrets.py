"""Encryption of tenant secrets at rest (AES-GCM) under the platform master key."""

from __future__ import annotations

import base64
import functools

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from actors.settings import Settings, master_key

# event fields that hold a SecretBox token (rotated with the key, redacted in exports)
SEALED_FIELDS = frozenset({"ciphertext", "sealed_secrets"})


class SecretBox:
    """Encrypts a secret to a printable token; only the tenant actor decrypts it.

    The master key is read on first use, so a tenant without secrets never needs it.
    """

    def __init__(self, settings: Settings | None = None, *, key: str | None = None) -> None:
        assert key is not None or settings is not None, "a SecretBox needs the settings or a key"
        self._settings, self._key = settings, key

    @functools.cached_property
    def _cipher(self) -> AESCipher:
        key = self._key if self._key is not None else master_key(self._settings)  # type: ignore[arg-type]
        return AESCipher(Environment(env={"CIPHER_KEY": key}))

    def seal(self, plaintext: str) -> str:
        return base64.b64encode(self._cipher.encrypt(plaintext.encode())).decode()

    def open(self, token: str) -> str:
        return self._cipher.decrypt(base64.b64decode(token)).decode()
