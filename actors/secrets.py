"""Encryption of tenant secrets at rest (AES-GCM) under the platform master key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from actors.settings import Settings


def master_key(settings: Settings) -> str:
    """`CB_MASTER_KEY` (base64 AES key), else a key file in the data directory, made once."""
    from_env = os.environ.get("CB_MASTER_KEY")
    if from_env:
        return from_env
    path = Path(settings.data_dir) / "master.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(AESCipher.create_key(32))
    return path.read_text().strip()


class SecretBox:
    """Encrypts a secret to a printable token; only the tenant actor decrypts it."""

    def __init__(self, settings: Settings) -> None:
        self._cipher = AESCipher(Environment(env={"CIPHER_KEY": master_key(settings)}))

    def seal(self, plaintext: str) -> str:
        return base64.b64encode(self._cipher.encrypt(plaintext.encode())).decode()

    def open(self, token: str) -> str:
        return self._cipher.decrypt(base64.b64decode(token)).decode()
