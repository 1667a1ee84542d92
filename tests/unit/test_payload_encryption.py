"""Optional payload encryption (CB_ENCRYPT_PAYLOADS): the event store's own AES-GCM cipher
over every event, and sealed results in the read model, on real SQLite files."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from actors.event_store import EventStore
from actors.secrets import SecretBox
from actors.settings import Settings
from domain.execution import Execution
from domain.results import Outcome
from projections import history, runner
from projections.db import ReadModelDB


def _record(settings: Settings, canary: str) -> dict:
    """An execution with the canary in its prompt and answer, stored and projected."""
    app = EventStore(env=settings.store_env())
    tenant_id = str(uuid.uuid4())
    execution = Execution(
        id=uuid.uuid4(), tenant_id=tenant_id, agent_id=str(uuid.uuid4()), agent_version=1,
        request={"prompt": f"tell me {canary}"}, model_requested="gpt-4o-mini", stream=False,
    )  # fmt: skip
    execution.complete(
        Outcome.model_validate({"answer": {"content": f"here: {canary}"},
                                "usage": {"total_tokens": 3}, "model_resolved": "gpt-4o-mini"})
    )  # fmt: skip
    app.save(execution)
    db = ReadModelDB(settings.read_model_url())
    history.seal_results_with(SecretBox(settings) if settings.encrypt_payloads else None)
    try:
        runner.create_tables(db)
        runner.catch_up(app, db)
        stored = app.repository.get(execution.id)
        view = history.get_execution(db, tenant_id, str(execution.id))
    finally:
        history.seal_results_with(None)
        db.close()
        app.close()
    assert stored.result["response"]["content"] == f"here: {canary}"  # it reads back
    assert view is not None
    return view


def _in_files(data_dir: Path, canary: str) -> bool:
    return any(canary.encode() in f.read_bytes() for f in data_dir.glob("*.sqlite*"))


@pytest.mark.parametrize("encrypted", [False, True])
def test_with_encryption_on_no_prompt_or_answer_is_in_the_files_in_clear(
    tmp_path: Path, encrypted: bool
) -> None:
    canary = f"CANARY-{uuid.uuid4().hex}"
    settings = Settings(data_dir=str(tmp_path), encrypt_payloads=encrypted)
    view = _record(settings, canary)
    assert view["response"]["content"] == f"here: {canary}"  # the API still shows it
    assert _in_files(tmp_path, canary) is not encrypted  # in clear only without encryption
