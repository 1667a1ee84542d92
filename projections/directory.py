"""The key directory: tenants and API-key hashes, for authentication on any replica."""

from __future__ import annotations

import json
from typing import Any

from domain.tenant import Tenant
from projections.db import Cursor, ReadModelDB

DDL = (
    """CREATE TABLE IF NOT EXISTS tenants (
        tenant_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at DOUBLE PRECISION
    )""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        hint TEXT,
        scopes TEXT NOT NULL,
        expires_at DOUBLE PRECISION,
        issued_at DOUBLE PRECISION,
        revoked_at DOUBLE PRECISION,
        last_used_at DOUBLE PRECISION
    )""",
)
# columns added after the first release, for read models made before them
COLUMNS = (("api_keys", "last_used_at", "DOUBLE PRECISION"),)
LAST_USED_EVERY_S = 60.0  # a key's last-used time is written at most this often


def on_created(cur: Cursor, event: Any) -> None:
    cur.execute(
        "INSERT INTO tenants (tenant_id, name, created_at) VALUES (?, ?, ?)"
        " ON CONFLICT (tenant_id) DO NOTHING",
        (event.tenant_id, event.name, event.timestamp.timestamp()),
    )


def on_key_issued(cur: Cursor, event: Any) -> None:
    cur.execute(
        "INSERT INTO api_keys (key_hash, key_id, tenant_id, hint, scopes, expires_at, issued_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key_hash) DO NOTHING",
        (
            event.key_hash,
            event.key_id,
            event.tenant_id,
            event.hint,
            json.dumps(event.scopes),
            event.expires_at,
            event.timestamp.timestamp(),
        ),
    )


def on_key_revoked(cur: Cursor, event: Any) -> None:
    cur.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND tenant_id = ?",
        (event.timestamp.timestamp(), event.key_id, event.tenant_id),
    )


HANDLERS = {
    Tenant.Created: on_created,
    Tenant.ApiKeyIssued: on_key_issued,
    Tenant.ApiKeyRevoked: on_key_revoked,
}


def lookup_key(db: ReadModelDB, key_hash: str, now: float) -> dict[str, Any] | None:
    """The key's tenant, scopes and validity, or None if no such key was ever issued; notes
    that it was presented (to the minute)."""
    rows = db.query(
        "SELECT key_id, tenant_id, scopes, expires_at, revoked_at, last_used_at FROM api_keys"
        " WHERE key_hash = ?",
        (key_hash,),
    )
    if not rows:
        return None
    row = rows[0]
    if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_EVERY_S:
        with db.transaction() as cur:
            cur.execute("UPDATE api_keys SET last_used_at = ? WHERE key_hash = ?", (now, key_hash))
    return {
        "key_id": row["key_id"],
        "tenant_id": row["tenant_id"],
        "scopes": json.loads(row["scopes"]),
        "expires_at": row["expires_at"],
        "revoked": row["revoked_at"] is not None,
    }


def list_tenants(db: ReadModelDB, limit: int, before: float | None) -> list[dict[str, Any]]:
    """Tenants, newest first, each with how many of its keys are live; `before` (a
    created_at) pages backwards."""
    sql = (
        "SELECT t.tenant_id, t.name, t.created_at, (SELECT COUNT(*) FROM api_keys k"
        " WHERE k.tenant_id = t.tenant_id AND k.revoked_at IS NULL) AS live_keys"
        " FROM tenants t"
    )
    params: list[Any] = []
    if before is not None:
        sql += " WHERE t.created_at < ?"
        params.append(before)
    sql += " ORDER BY t.created_at DESC, t.tenant_id LIMIT ?"
    params.append(limit)
    return [
        {"id": row["tenant_id"], "name": row["name"], "created_at": row["created_at"],
         "live_keys": int(row["live_keys"])}
        for row in db.query(sql, params)
    ]  # fmt: skip


def list_keys(db: ReadModelDB, tenant_id: str) -> list[dict[str, Any]]:
    """A tenant's keys, newest first: never the secret or its hash."""
    rows = db.query(
        "SELECT key_id, hint, scopes, expires_at, issued_at, revoked_at, last_used_at"
        " FROM api_keys WHERE tenant_id = ? ORDER BY issued_at DESC",
        (tenant_id,),
    )
    return [
        {
            "id": row["key_id"],
            "hint": row["hint"],
            "scopes": json.loads(row["scopes"]),
            "expires_at": row["expires_at"],
            "issued_at": row["issued_at"],
            "revoked_at": row["revoked_at"],
            "last_used_at": row["last_used_at"],
        }
        for row in rows
    ]
