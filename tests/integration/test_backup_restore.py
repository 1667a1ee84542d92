"""Backup and restore as docs/operations.md tells operators to do it: an online backup of
the live store (`sqlite3 … .backup`, `pg_dump`), restored into a fresh store beside the
master key, then `cb projections rebuild`: every read-model row of the tenant comes back
the same, from the events alone."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import psycopg

from actors.payload_keys import PayloadKeys
from actors.secrets import SecretBox
from actors.settings import Settings
from projections import history, tenant_rows
from projections.db import ReadModelDB
from tests.integration.test_execute import marker
from tests.support.client import ApiClient
from tests.support.cluster import PG_URL, drop_database
from tests.support.sse import read_events, stream

CB = [sys.executable, str(Path(__file__).resolve().parents[2] / "cli.py")]
# written by the read model itself, not by an event (at most once a minute per key): a
# rebuilt read model has it empty until the key is used again
NOT_FROM_EVENTS = {"api_keys": ("last_used_at",)}


def _rows(url: str, tenant_id: str, settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """The tenant's rows of every read model (history, keys, audit, metrics), comparable:
    a sealed value (a fresh nonce at every sealing) as what it opens to, with the store's
    payload keys (`k:<key id>:…`) or its master key (`sealed:…`)."""
    keys, box = PayloadKeys(settings), SecretBox(settings)
    found: dict[str, list[dict[str, Any]]] = {}
    for tables, schema in ((tenant_rows.TABLES, None), (tenant_rows.METRIC_TABLES, "analytics")):
        db = ReadModelDB(url, schema=schema if url.startswith("postgres") else None)
        try:
            for row in tenant_rows.exported_rows(db, tenant_id, tables):
                data = {k: _opened(keys, box, v) for k, v in row["data"].items()
                        if k not in NOT_FROM_EVENTS.get(row["table"], ())}  # fmt: skip
                found.setdefault(row["table"], []).append(data)
        finally:
            db.close()
    keys.close()
    return {table: sorted(rows, key=repr) for table, rows in found.items()}


def _opened(keys: PayloadKeys, box: SecretBox, value: Any) -> Any:
    if isinstance(value, str) and value.startswith(history.SEALED):  # CB_ENCRYPT_PAYLOADS
        return ("sealed", box.open(value.removeprefix(history.SEALED)))
    if isinstance(value, str) and value.startswith("k:"):
        opened = keys.open_text(value)
        assert opened is not None, "a sealed payload that its keys do not open"
        return ("sealed", opened)
    return value


def _activity(gateway: ApiClient) -> str:
    """A tenant with some history: whole, streamed, failed, a subject's sealed execution,
    feedback, a key issued; returns its id once the read models have folded all of it."""
    tenant = gateway.new_tenant("Backed up")
    agent = gateway.new_agent(tenant)
    done = gateway.execute(tenant, agent["id"], marker()).json()
    gateway.execute(tenant, agent["id"], marker(), subject="user-42")
    gateway.cluster.emulator.script(tag := marker(), status=400, error_body={"error": {}})
    gateway.execute(tenant, agent["id"], tag)
    with stream(gateway, tenant, agent["id"], marker()) as streamed:
        assert read_events(streamed)[-1]["event"] == "execution_complete"
    feedback = gateway.http.post(
        f"/api/v1/executions/{done['execution_id']}/feedback",
        json={"score": 0.75, "comment": "fine"}, headers=tenant.headers(),
    )  # fmt: skip
    assert feedback.status_code == 201, feedback.text
    issued = gateway.http.post(
        f"/api/v1/admin/tenants/{tenant.id}/api-keys", json={}, headers=gateway.admin
    )
    assert issued.status_code == 201, issued.text
    # reads that fold every event first: history, then the metrics
    assert len(gateway.http.get("/api/v1/executions", headers=tenant.headers()).json()[
        "executions"]) == 4  # fmt: skip
    usage = gateway.http.get("/api/v1/analytics/usage", headers=tenant.headers())
    assert usage.json()["rows"][0]["executions"] == 4, usage.text
    return tenant.id


def _same(rebuilt: dict[str, list[dict[str, Any]]], live: dict[str, list[dict[str, Any]]]) -> None:
    """Every table with the same rows; else which columns of which rows differ."""
    assert sorted(rebuilt) == sorted(live)
    for table, rows in live.items():
        assert len(rebuilt[table]) == len(rows), table
        for before, after in zip(rows, rebuilt[table], strict=True):
            changed = {k: (before[k], after.get(k)) for k in before
                       if not _equal(before[k], after.get(k))}  # fmt: skip
            assert not changed, (table, changed)


def _equal(before: Any, after: Any) -> bool:
    """Equal; floats to 1e-9 relative: a sum folded live and refolded may differ in its last
    bit (floating-point addition is not associative, and the folds group events apart)."""
    if isinstance(before, float) and isinstance(after, float):
        return math.isclose(before, after, rel_tol=1e-9)
    return bool(before == after)


def _rebuild(env: dict[str, str]) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CB_", "RAY_"))}
    run = subprocess.run(
        [*CB, "projections", "rebuild"], env={**clean, **env}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "read_models: rebuilt from" in run.stdout and "metrics: rebuilt from" in run.stdout


def test_a_restored_backup_rebuilds_every_read_model_row(
    gateway: ApiClient, tmp_path: Path
) -> None:
    if gateway.backend == "sqlite":
        _restored_sqlite(gateway, tmp_path)
    else:
        _restored_postgres(gateway, tmp_path)


def _restored_sqlite(gateway: ApiClient, tmp_path: Path) -> None:
    tenant_id = _activity(gateway)
    live = Path(gateway.settings.data_dir)
    restored = tmp_path / "restored"
    restored.mkdir()
    for name in ("events.sqlite", "payload_keys.sqlite"):  # online, WAL-consistent copies
        subprocess.run(
            ["sqlite3", str(live / name), f".backup '{restored / name}'"], check=True, timeout=60
        )
    shutil.copy(live / "master.key", restored / "master.key")  # kept apart from backups
    _rebuild({"CB_DATA_DIR": str(restored)})
    rebuilt = _rows(f"sqlite:///{restored / 'readmodels.sqlite'}", tenant_id,
                    Settings(data_dir=str(restored)))  # fmt: skip
    _same(rebuilt, _rows(f"sqlite:///{live / 'readmodels.sqlite'}", tenant_id, gateway.settings))
    assert len(rebuilt["executions"]) == 4 and rebuilt["execution_feedback"]


def _restored_postgres(gateway: ApiClient, tmp_path: Path) -> None:
    tenant_id = _activity(gateway)
    live_url = gateway.settings.database_url or ""
    dump = tmp_path / "cb.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), "-d", _plain(live_url)], check=True,
                   timeout=300)  # fmt: skip
    fresh = f"cb_restored_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {fresh}")
    restored_url = PG_URL.rsplit("/", 1)[0] + "/" + fresh
    try:
        subprocess.run(["pg_restore", "--no-owner", "-d", restored_url, str(dump)], check=True,
                       timeout=300)  # fmt: skip
        keys = tmp_path / "keys"
        keys.mkdir()
        shutil.copy(Path(gateway.settings.data_dir) / "master.key", keys / "master.key")
        _rebuild({"CB_DATABASE_URL": restored_url, "CB_DATA_DIR": str(keys),
                  "CB_ENCRYPT_PAYLOADS": "1"})  # fmt: skip
        rebuilt = _rows(restored_url, tenant_id,
                        Settings(database_url=restored_url, data_dir=str(keys)))  # fmt: skip
        _same(rebuilt, _rows(_plain(live_url), tenant_id, gateway.settings))
        assert len(rebuilt["executions"]) == 4 and rebuilt["execution_feedback"]
    finally:
        drop_database(restored_url)


def _plain(url: str) -> str:
    """The URL without the canary password the test cluster adds (trust auth here)."""
    head, _, rest = url.partition("://")
    credentials, _, host = rest.rpartition("@")
    return f"{head}://{credentials.split(':')[0]}@{host}" if credentials else url
