"""Looking into what a backend stored: its events, and whether a canary's bytes are anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.settings import Settings
    from domain.execution import Execution
    from tests.support.client import ApiClient


def new_execution(tenant_id: str, prompt: str = "hello", **extra: object) -> Execution:
    """A routed execution of agent `a`, its events not yet saved."""
    import uuid

    from domain.execution import Execution

    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant_id, agent_id="a", agent_version=1,
        request={"prompt": prompt}, model_requested="gpt-4.1-mini", stream=False, **extra,
    )  # fmt: skip
    execution.resolve_model("gpt-4.1-mini", "openai", {})
    return execution


def stored_events(settings: Settings) -> list[tuple[bytes, Any]]:
    """Every stored event of the app: its bytes as stored, and the event decoded."""
    from actors.event_store import EventStore

    app = EventStore(env=settings.store_env())
    try:
        notes = app.recorder.select_notifications(start=None, limit=10**6)
        return [(bytes(n.state), app.mapper.to_domain_event(n)) for n in notes]
    finally:
        app.close()


def canary_in_store(gateway: ApiClient, canary: str) -> bool:
    """Whether the canary's bytes are anywhere in the backend's stored data: any SQLite file
    (and WAL) of the app, or any row of any PostgreSQL table and the events' state bytes."""
    if gateway.backend == "sqlite":
        files = Path(gateway.settings.data_dir).glob("*.sqlite*")
        return any(canary.encode() in f.read_bytes() for f in files if f.is_file())
    import psycopg

    with psycopg.connect(gateway.settings.database_url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        ).fetchall()]  # fmt: skip
        in_rows = sum(
            conn.execute(
                f"SELECT count(*) FROM {t} AS r WHERE r::text LIKE %s", (f"%{canary}%",)
            ).fetchone()[0]
            for t in tables
        )
        in_events = conn.execute(
            "SELECT count(*) FROM circuitbreaker_events"
            " WHERE position(convert_to(%s, 'UTF8') in state) > 0",
            (canary,),
        ).fetchone()[0]
    return bool(in_rows or in_events)
