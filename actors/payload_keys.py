"""The payload key table: one AES-256-GCM key per (tenant, data subject, hour of start),
kept wrapped under the master key apart from the events and read models.

An execution that names a data subject, or runs for a tenant with payload retention, has
its payload sealed under such a key (`actors.shredding_mapper`, `projections.history`).
Destroying the key (a subject's erasure, a retention sweep) makes every copy of that
payload unreadable: events, read-model rows, checkpoints and backups of either.

Keys live in `payload_keys.sqlite` in the data directory, or in the `payload_keys` schema
of PostgreSQL. Deletion is secure (SQLite `secure_delete` and a truncated WAL; PostgreSQL
`VACUUM`). Each process caches keys for a minute at most; erasure also tells the processes
that read payloads to forget at once (`forget`).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from actors.secrets import SecretBox
from actors.settings import Settings
from domain.shredding import SEALED_PREFIX
from projections.db import ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS payload_keys (
        kid TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        subject_ref TEXT NOT NULL,
        bucket BIGINT NOT NULL,
        wrapped TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        UNIQUE (tenant_id, subject_ref, bucket)
    )""",
)
NO_SUBJECT = "-"  # the subject reference of a retention tenant's executions that name none
CACHE_S = 60.0  # how long a process trusts a key it read (erasure also forgets at once)


class PayloadKeys:
    """The key table, opened on first use; thread-safe (the store's threads call it)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._db: ReadModelDB | None = None
        self._lock = threading.Lock()
        self._current: dict[tuple[str, str, int], str] = {}  # (tenant, ref, bucket) → kid
        self._keys: dict[str, tuple[float, AESGCM | None]] = {}  # kid → (read at, key)

    def db(self) -> ReadModelDB:
        with self._lock:
            if self._db is None:
                self._db = open_table(self._settings)
            return self._db

    # making and using keys

    def known(self, tenant_id: str, subject_ref: str, bucket: int) -> str | None:
        """The key id `kid_for` gave for these, if this process has it (no I/O)."""
        return self._current.get((tenant_id, subject_ref, bucket))

    def kid_for(self, tenant_id: str, subject_ref: str, bucket: int) -> str:
        """The key id sealing what `subject_ref` starts in `bucket`, made if missing."""
        kid = self._current.get((tenant_id, subject_ref, bucket))
        if kid is not None:
            return kid
        key = AESGCM.generate_key(bit_length=256)
        wrapped = SecretBox(self._settings).seal(base64.b64encode(key).decode())
        with self.db().transaction() as cur:
            cur.execute(
                "INSERT INTO payload_keys (kid, tenant_id, subject_ref, bucket, wrapped,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (uuid.uuid4().hex, tenant_id, subject_ref, bucket, wrapped, time.time()),
            )
        [row] = self.db().query(
            "SELECT kid FROM payload_keys WHERE tenant_id = ? AND subject_ref = ? AND bucket = ?",
            (tenant_id, subject_ref, bucket),
        )
        self._current[(tenant_id, subject_ref, bucket)] = row["kid"]
        return str(row["kid"])

    def _key(self, kid: str) -> AESGCM | None:
        kept = self._keys.get(kid)
        if kept is not None and time.monotonic() - kept[0] < CACHE_S:
            return kept[1]
        rows = self.db().query("SELECT wrapped FROM payload_keys WHERE kid = ?", (kid,))
        key = None
        if rows:
            key = AESGCM(base64.b64decode(SecretBox(self._settings).open(rows[0]["wrapped"])))
        self._keys[kid] = (time.monotonic(), key)
        return key

    def seal(self, kid: str, payload: Any) -> str | None:
        """`payload` (JSON-able) sealed under the key; None when the key is gone."""
        key = self._key(kid)
        if key is None:
            return None
        nonce = os.urandom(12)
        plain = json.dumps(payload, separators=(",", ":"), default=str).encode()
        return base64.b64encode(nonce + key.encrypt(nonce, plain, kid.encode())).decode()

    def open(self, kid: str, token: str) -> Any | None:
        """The payload `seal` made; None when the key is gone (erased)."""
        key = self._key(kid)
        if key is None or not token:
            return None
        raw = base64.b64decode(token)
        return json.loads(key.decrypt(raw[:12], raw[12:], kid.encode()))

    def seal_text(self, kid: str, text: str) -> str:
        """A read-model value: `k:<kid>:<token>` (no token when the key is already gone)."""
        return f"{SEALED_PREFIX}{kid}:{self.seal(kid, text) or ''}"

    def open_text(self, value: str) -> str | None:
        """The text `seal_text` sealed; None when erased."""
        kid, _, token = value[len(SEALED_PREFIX) :].partition(":")
        opened = self.open(kid, token)
        return opened if isinstance(opened, str) else None

    # destroying keys

    def destroy(self, tenant_id: str, subject_ref: str | None = None,
                before: int | None = None) -> int:  # fmt: skip
        """Delete the tenant's keys of one subject, or of every hour before `before`; how
        many went. Securely: no copy stays in the file, its WAL or dead rows."""
        sql, params = "DELETE FROM payload_keys WHERE tenant_id = ?", [tenant_id]
        if subject_ref is not None:
            sql += " AND subject_ref = ?"
            params.append(subject_ref)
        if before is not None:
            sql += " AND bucket < ?"
            params.append(before)
        db = self.db()
        with db.transaction() as cur:
            if not db.is_postgres:
                cur.execute("PRAGMA secure_delete = ON")
            gone = max(cur.execute(sql, params).rowcount, 0)
        if gone:
            db.run("VACUUM payload_keys" if db.is_postgres else "PRAGMA wal_checkpoint(TRUNCATE)")
        self.forget(tenant_id, subject_ref, before)
        return gone

    def forget(self, tenant_id: str, subject_ref: str | None = None,
               before: int | None = None) -> None:  # fmt: skip
        """Drop cached keys (all of them read from the table: cheap to read again)."""
        self._keys.clear()
        self._current = {
            k: v for k, v in self._current.items()
            if k[0] != tenant_id
            or (subject_ref is not None and k[1] != subject_ref)
            or (before is not None and k[2] >= before)
        }  # fmt: skip

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


def open_table(settings: Settings) -> ReadModelDB:
    """The key table's database: its own SQLite file, or its own PostgreSQL schema."""
    if settings.uses_postgres:
        db = ReadModelDB(settings.database_url or "", schema="payload_keys")
    else:
        Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
        db = ReadModelDB("sqlite:///" + str(Path(settings.data_dir) / "payload_keys.sqlite"))
    with db.transaction() as cur:
        for ddl in DDL:
            cur.execute(ddl)
    return db
