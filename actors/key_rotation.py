"""Master key rotation, run offline: every secret sealed under the old key, and with payload
encryption every event and sealed result, is re-encrypted under a new key.

Each database is rewritten in one transaction. The new key is written to a `.next` file
before anything changes and replaces the old key only once every row is rewritten, so a run
that stops half-way is finished by running it again: a row already under the new key is
recognised and left alone.
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.cryptography import AESCipher
from eventsourcing.utils import Environment

from actors.event_store import EventStore
from actors.payload_keys import open_table
from actors.secrets import SEALED_FIELDS, SecretBox
from actors.settings import Settings, master_key, master_key_file, new_key, write_key
from domain.audit import PLATFORM, SecurityRecord
from projections.db import ReadModelDB
from projections.history import SEALED, SEALED_COLUMNS


@dataclass
class Rotation:
    """What a rotation re-encrypted, and where the new key now is."""

    events: int = 0
    sealed_secrets: int = 0
    history_values: int = 0
    payload_keys: int = 0
    key_file: str = ""


class _Resealer:
    """Opens with the old key and seals with the new; knows a token already rotated."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = SecretBox(key=old), SecretBox(key=new)
        self.count = 0

    def reseal(self, token: str) -> str | None:
        """`token` under the new key, or None if it already is (raises if neither opens it)."""
        try:
            plaintext = self.old.open(token)
        except ValueError:
            self.new.open(token)
            return None
        self.count += 1
        return self.new.seal(plaintext)

    def walk(self, value: Any) -> Any:
        """`value` with every sealed field resealed."""
        if isinstance(value, dict):
            return {
                k: (self.reseal(v) or v)
                if k in SEALED_FIELDS and isinstance(v, str)
                else self.walk(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.walk(v) for v in value]
        return value


def _cipher(key: str) -> AESCipher:
    return AESCipher(Environment(env={"CIPHER_KEY": key}))


def _rotate_events(settings: Settings, resealer: _Resealer, old: str, new: str) -> int:
    """Rewrite every stored event whose bytes depend on the key; how many were rewritten."""
    app = EventStore(env=settings.store_env())
    try:
        mapper, recorder = app.mapper, app.recorder
        table = recorder.events_table_name  # type: ignore[attr-defined]
        postgres = "postgres" in type(recorder).__module__
        mark = "%s" if postgres else "?"
        old_cipher = _cipher(old) if settings.encrypt_payloads else None
        new_cipher = _cipher(new) if settings.encrypt_payloads else None
        rewritten = 0
        datastore: Any = recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(f"SELECT originator_id, originator_version, state FROM {table}")
            rows = [dict(row) for row in cursor.fetchall()]
            for row in rows:
                state = bytes(row["state"])
                if old_cipher is not None and new_cipher is not None:
                    try:
                        state = old_cipher.decrypt(state)
                    except ValueError:
                        new_cipher.decrypt(state)  # already rotated, or raises
                        continue
                plain = mapper.compressor.decompress(state) if mapper.compressor else state
                before = resealer.count
                event_state = resealer.walk(mapper.transcoder.decode(plain))
                if resealer.count > before:
                    plain = mapper.transcoder.encode(event_state)
                    state = mapper.compressor.compress(plain) if mapper.compressor else plain
                elif new_cipher is None:
                    continue
                if new_cipher is not None:
                    state = new_cipher.encrypt(state)
                cursor.execute(
                    f"UPDATE {table} SET state = {mark} "
                    f"WHERE originator_id = {mark} AND originator_version = {mark}",
                    (state, row["originator_id"], row["originator_version"]),
                )
                rewritten += 1
        return rewritten
    finally:
        app.close()


def _rotate_history(settings: Settings, old: str, new: str) -> int:
    """Reseal the history read model's sealed values; how many there were."""
    db = ReadModelDB(settings.read_model_url())
    resealer = _Resealer(old, new)
    try:
        present = db.columns("executions")
        with db.transaction() as cur:
            for column in (c for c in SEALED_COLUMNS if c in present):
                sealed = cur.execute(
                    f"SELECT execution_id, {column} AS value FROM executions WHERE {column} LIKE ?",
                    (SEALED + "%",),
                ).fetchall()
                for row in sealed:
                    token = resealer.reseal(row["value"][len(SEALED) :])
                    if token is not None:
                        cur.execute(
                            f"UPDATE executions SET {column} = ? WHERE execution_id = ?",
                            (SEALED + token, row["execution_id"]),
                        )
    finally:
        db.close()
    return resealer.count


def _rotate_payload_keys(settings: Settings, old: str, new: str) -> int:
    """Rewrap the payload key table's keys; how many there were."""
    db = open_table(settings)
    resealer = _Resealer(old, new)
    try:
        with db.transaction() as cur:
            for row in cur.execute("SELECT kid, wrapped FROM payload_keys").fetchall():
                token = resealer.reseal(row["wrapped"])
                if token is not None:
                    cur.execute(
                        "UPDATE payload_keys SET wrapped = ? WHERE kid = ?", (token, row["kid"])
                    )
    finally:
        db.close()
    return resealer.count


def rotate_master_key(settings: Settings, new_key_file: Path | None = None) -> Rotation:
    """Re-encrypt everything under a new key; the server must be stopped.

    Without `new_key_file` the key file is replaced by the new key. With it (required when
    the key comes from `CB_MASTER_KEY`), the new key is written there for the operator to
    deploy and the old key stays where it was.
    """
    old = master_key(settings)
    from_env = bool(os.environ.get("CB_MASTER_KEY"))
    if from_env and new_key_file is None:
        raise ValueError("the key comes from CB_MASTER_KEY: name a file for the new key")
    current = master_key_file(settings)
    target = new_key_file or current.with_name(current.name + ".next")
    if not target.exists():
        write_key(target, new_key())
    new = target.read_text().strip()
    _cipher(new)  # a malformed key file stops here, before anything is rewritten
    if new == old:
        raise ValueError(f"{target} holds the current key")
    resealer = _Resealer(old, new)
    rotation = Rotation(events=_rotate_events(settings, resealer, old, new))
    rotation.sealed_secrets = resealer.count
    rotation.history_values = _rotate_history(settings, old, new)
    rotation.payload_keys = _rotate_payload_keys(settings, old, new)
    if not from_env and new_key_file is None:
        os.replace(target, current)
        target = current
    rotation.key_file = str(target)
    _record(settings, new, rotation)
    return rotation


def _record(settings: Settings, key: str, rotation: Rotation) -> None:
    """The rotation on the platform's audit trail: who ran it, on which host, what it did
    (under the new key when payloads are encrypted)."""
    env = settings.store_env()
    if settings.encrypt_payloads:
        env["CIPHER_KEY"] = key
    app = EventStore(env=env)
    try:
        entry = {
            "tenant_id": PLATFORM,
            "kind": "master_key.rotated",
            "actor": f"operator {getpass.getuser()}",
            "source": socket.gethostname(),
            "at": time.time(),
            "detail": {
                "events": rotation.events,
                "sealed_secrets": rotation.sealed_secrets,
                "history_values": rotation.history_values,
                "payload_keys": rotation.payload_keys,
            },
            "count": 1,
        }
        app.save(SecurityRecord([entry]))
    finally:
        app.close()
