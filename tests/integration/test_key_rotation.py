"""`cb rotate-master-key`: sealed secrets, encrypted events and sealed results re-encrypted
under a new key on real SQLite files and a real PostgreSQL database (no Ray needed)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

import cli
from actors.event_store import EventStore
from actors.secrets import SecretBox
from actors.settings import Settings, new_key
from domain.audit import PLATFORM, SecurityRecord
from domain.execution import Execution
from domain.results import Outcome
from domain.tenant import Tenant
from projections import history, runner
from projections.db import ReadModelDB
from tests.support.cluster import drop_database, postgres_database

CANARY = "sk-canary-provider-key"


def _seed(settings: Settings) -> tuple[uuid.UUID, uuid.UUID]:
    """A tenant with its own provider key and an MCP server's secrets, and a projected
    execution, all sealed under the current key."""
    box = SecretBox(settings)
    app = EventStore(env=settings.store_env())
    tenant_id = uuid.uuid4()
    tenant = Tenant(id=tenant_id, tenant_id=str(tenant_id), name="Rotating")
    tenant.set_own_provider_key("openai", box.seal(CANARY), "sk-…", "admin")
    secrets = json.dumps({"env": {"TOKEN": "mcp-secret"}})
    tenant.register_mcp_server({"id": "s1", "name": "files"}, box.seal(secrets), "admin")
    execution = Execution(
        id=uuid.uuid4(), tenant_id=str(tenant_id), agent_id=str(uuid.uuid4()), agent_version=1,
        request={"prompt": "hello"}, model_requested="gpt-4o-mini", stream=False,
    )  # fmt: skip
    execution.complete(Outcome.model_validate({"answer": {"content": "the answer"}}))
    app.save(tenant, execution)
    db = ReadModelDB(settings.read_model_url())
    history.seal_results_with(box if settings.encrypt_payloads else None)
    try:
        runner.create_tables(db)
        runner.catch_up(app, db)
    finally:
        history.seal_results_with(None)
        db.close()
        app.close()
    return tenant_id, execution.id


def _read_back(settings: Settings, tenant_id: uuid.UUID, execution_id: uuid.UUID) -> None:
    """Everything opens with the key now in force, and says what was sealed."""
    box = SecretBox(settings)
    app = EventStore(env=settings.store_env())
    db = ReadModelDB(settings.read_model_url())
    history.seal_results_with(box if settings.encrypt_payloads else None)
    try:
        tenant = app.repository.get(tenant_id)
        assert box.open(tenant.own_provider_keys["openai"]["ciphertext"]) == CANARY
        secrets = json.loads(box.open(tenant.mcp_servers["s1"]["sealed_secrets"]))
        assert secrets == {"env": {"TOKEN": "mcp-secret"}}
        assert app.repository.get(execution_id).result["response"]["content"] == "the answer"
        view = history.get_execution(db, str(tenant_id), str(execution_id))
        assert view is not None and view["response"]["content"] == "the answer"
    finally:
        history.seal_results_with(None)
        db.close()
        app.close()


def _event_count(settings: Settings, *ids: uuid.UUID) -> int:
    app = EventStore(env=settings.store_env())
    try:
        return sum(len(app.recorder.select_events(i)) for i in ids)
    finally:
        app.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    url = postgres_database()
    if url is None:
        pytest.skip("PostgreSQL is unreachable (runs under CI=true)")
    yield url
    drop_database(url)


@pytest.mark.parametrize("encrypted", [False, True])
def test_rotation_reseals_everything_and_the_old_key_opens_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    backend: str | None,
    encrypted: bool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("CB_MASTER_KEY", raising=False)
    monkeypatch.delenv("CB_MASTER_KEY_FILE", raising=False)
    monkeypatch.setenv("CB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CB_ENCRYPT_PAYLOADS", "on" if encrypted else "off")
    if backend:
        monkeypatch.setenv("CB_DATABASE_URL", backend)
    else:
        monkeypatch.delenv("CB_DATABASE_URL", raising=False)
    settings = Settings.from_env()
    tenant_id, execution_id = _seed(settings)
    key_file = tmp_path / "master.key"
    old_key = key_file.read_text()

    assert cli.main(["rotate-master-key", "--force"]) == 0
    out = capsys.readouterr().out
    assert "re-encrypted 2 sealed secrets" in out and str(key_file) in out
    events = _event_count(settings, tenant_id, execution_id) if encrypted else 2
    assert f"and {events} events," in out  # the two with secrets; all when encrypted
    assert f"{2 if encrypted else 0} history values" in out  # its input and result
    new_key = key_file.read_text()
    assert new_key != old_key and old_key not in out and new_key not in out
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "master.key.next").exists()

    _read_back(settings, tenant_id, execution_id)  # under the new key
    old_box = SecretBox(key=old_key)
    app = EventStore(env=settings.store_env())
    try:
        tenant = app.repository.get(tenant_id)
        with pytest.raises(ValueError):
            old_box.open(tenant.own_provider_keys["openai"]["ciphertext"])
        # the rotation is on the platform's audit trail (who, which host, how much)
        topic = get_topic(SecurityRecord.Created)
        notes = app.recorder.select_notifications(start=None, limit=100, topics=[topic])
        [rotated] = [e for n in notes for e in app.mapper.to_domain_event(n).entries]
        assert rotated["kind"] == "master_key.rotated" and rotated["tenant_id"] == PLATFORM
        assert rotated["actor"].startswith("operator ") and rotated["detail"]["sealed_secrets"] == 2
    finally:
        app.close()
    if encrypted:  # the event store itself no longer opens with the old key
        monkeypatch.setenv("CB_MASTER_KEY", old_key)
        stale = EventStore(env=settings.store_env())
        try:
            with pytest.raises(ValueError):
                stale.repository.get(tenant_id)
        finally:
            stale.close()


def test_an_interrupted_rotation_finishes_when_run_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop after the events were rewritten (the key file not yet replaced): the rerun
    leaves rewritten rows alone and completes."""
    for name in ("CB_MASTER_KEY", "CB_MASTER_KEY_FILE", "CB_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(data_dir=str(tmp_path), encrypt_payloads=True)
    tenant_id, execution_id = _seed(settings)
    from actors import key_rotation

    real_history = key_rotation._rotate_history

    def stop(*_: object) -> int:
        raise RuntimeError("power cut")

    monkeypatch.setattr(key_rotation, "_rotate_history", stop)
    with pytest.raises(RuntimeError):
        key_rotation.rotate_master_key(settings)
    assert (tmp_path / "master.key.next").exists()
    monkeypatch.setattr(key_rotation, "_rotate_history", real_history)
    done = key_rotation.rotate_master_key(settings)
    assert (done.events, done.sealed_secrets, done.history_values) == (0, 0, 2)
    _read_back(settings, tenant_id, execution_id)


def test_a_key_from_the_environment_needs_a_file_for_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CB_MASTER_KEY", new_key())
    monkeypatch.setenv("CB_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CB_DATABASE_URL", raising=False)
    monkeypatch.delenv("CB_ENCRYPT_PAYLOADS", raising=False)
    assert cli.main(["rotate-master-key", "--force"]) == 1
    assert "CB_MASTER_KEY" in capsys.readouterr().out
    settings = Settings.from_env()
    tenant_id, execution_id = _seed(settings)
    target = tmp_path / "deploy" / "new.key"
    assert cli.main(["rotate-master-key", "--force", "--new-key-file", str(target)]) == 0
    monkeypatch.setenv("CB_MASTER_KEY", target.read_text())
    _read_back(settings, tenant_id, execution_id)
