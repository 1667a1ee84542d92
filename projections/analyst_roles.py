"""PostgreSQL login roles for analysts: `SELECT` on the `analytics` schema's read models,
one tenant's rows only (row-level security), nothing else.

Each role gets a policy per analytics table that shows it the rows of its tenant; the
projection writes as the tables' owner, which row-level security does not restrict.
"""

from __future__ import annotations

import re
import secrets
import uuid
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from projections.metrics import SCHEMA, TABLES

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _check(tenant_id: str | None, name: str) -> None:
    if not ROLE_NAME.match(name):
        raise ValueError("a role name is lower-case letters, digits and _ (at most 63)")
    if tenant_id is not None:
        uuid.UUID(tenant_id)  # a tenant id is a UUID; anything else is refused here


def _policy(name: str) -> sql.Identifier:
    return sql.Identifier(f"analyst_{name}")


def _tables() -> list[sql.Composed]:
    return [sql.SQL("{}.{}").format(sql.Identifier(SCHEMA), sql.Identifier(t)) for t in TABLES]


def create_role(database_url: str, tenant_id: str, name: str) -> str:
    """Create login role `name` that reads only `tenant_id`'s analytics rows; its URL.

    The analytics tables must exist (the server makes them when it starts).
    """
    _check(tenant_id, name)
    password = secrets.token_urlsafe(24)
    role = sql.Identifier(name)
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        database = conn.execute("SELECT current_database()").fetchone()[0]
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
        )
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(database), role))  # fmt: skip
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(SCHEMA), role))
        for table in _tables():
            conn.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(table))
            conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(table, role))
            conn.execute(
                sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING (tenant_id = {})").format(
                    _policy(name), table, role, sql.Literal(tenant_id)
                )
            )
    parts = urlsplit(database_url)
    host = parts.hostname or "localhost"
    netloc = f"{quote(name)}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(("postgresql", netloc, f"/{database}", "", ""))


def drop_role(database_url: str, name: str) -> None:
    """Drop the analyst role `name` and its policies."""
    _check(None, name)
    role = sql.Identifier(name)
    with psycopg.connect(database_url, autocommit=True) as conn, conn.transaction():
        for table in _tables():
            conn.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(_policy(name), table))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
        conn.execute(sql.SQL("DROP ROLE {}").format(role))
