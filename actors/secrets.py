"""Encryption of tenant secrets at rest (AES-GCM) under the platform master key."""

from __future__ import annotations

import base64
import os
from pathlib import Path

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from actors.settings import Settings

# event fields that hold a SecretBox token (rotated with the key, redacted in exports)
SEALED_FIELDS = frozenset({"ciphertext", "sealed_secrets"})


def master_key_file(settings: Settings) -> Path:
    """`CB_MASTER_KEY_FILE`, else `master.key` in the data directory."""
    return Path(os.environ.get("CB_MASTER_KEY_FILE") or Path(settings.data_dir) / "master.key")


def new_key() -> str:
    return AESCipher.create_key(32)


def write_key(path: Path, key: str) -> None:
    """Write a key file readable by its owner only (never over an existing file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)


def master_key(settings: Settings) -> str:
    """`CB_MASTER_KEY` (base64 AES key), else the key file; the embedded default makes one."""
    from_env = os.environ.get("CB_MASTER_KEY")
    if from_env:
        return from_env
    path = master_key_file(settings)
    if not path.exists():
        if os.environ.get("CB_MASTER_KEY_FILE"):
            raise RuntimeError("CB_MASTER_KEY_FILE names a file that does not exist")
        write_key(path, new_key())
    return path.read_text().strip()


class SecretBox:
    """Encrypts a secret to a printable token; only the tenant actor decrypts it."""

    def __init__(self, settings: Settings | None = None, *, key: str | None = None) -> None:
        if key is None:
            assert settings is not None, "a SecretBox needs the settings or a key"
            key = master_key(settings)
        self._cipher = AESCipher(Environment(env={"CIPHER_KEY": key}))

    def seal(self, plaintext: str) -> str:
        return base64.b64encode(self._cipher.encrypt(plaintext.encode())).decode()

    def open(self, token: str) -> str:
        return self._cipher.decrypt(base64.b64decode(token)).decode()
