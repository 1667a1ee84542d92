"""The execution events the mapper encodes with `orjson` read back as the library's own
encoding of them does, and a state `orjson` declines takes the library's path."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from actors.event_store import EventStore
from actors.settings import Settings
from actors.shredding_mapper import FAST_KINDS, ShreddingMapper
from domain.execution import Execution
from domain.results import Answer, Attempt, ErrorInfo, Outcome, Timings, Usage


@pytest.fixture
def app(tmp_path: Path) -> Any:
    store = EventStore(env=Settings(data_dir=str(tmp_path)).store_env())
    yield store
    store.close()


def _execution(request: dict[str, Any], end: str = "complete") -> Execution:
    execution = Execution(
        id=uuid.uuid4(), tenant_id="t-1", agent_id="a-1", agent_version=2, request=request,
        model_requested="cb:smart-chat", stream=True, kind="agent_execution",
        trace_id="0af7651916cd43dd8448eb211c80319c", caller="key:k-1",
    )  # fmt: skip
    execution.resolve_model("gpt-4o-mini", "openai", {"strategy": "balanced", "chain": ["x"]})
    execution.checkpoint([[1, "content_delta", {"delta": "Hé \u2028 ✓"}]], {"total_tokens": 3})
    usage = Usage(prompt_tokens=20, completion_tokens=6, total_tokens=26)
    error = ErrorInfo(type="provider_error", message="upstream 503") if end == "fail" else None
    getattr(execution, end)(
        Outcome(
            answer=Answer(content="Ray Serve serves models.", finish_reason="stop"),
            usage=usage, cost_usd=1.2e-05, model_resolved="gpt-4o-mini", provider="openai",
            attempts=[Attempt(model="gpt-4o-mini", latency_ms=12.5, permit_ms=0.1)],
            timings=Timings(start_write=0.4, provider=12.5), duration_ms=13.25,
            request_metadata={"user": "u-1", "ratio": 0.1 + 0.2}, error=error,
        ),
        [[2, "done", {}]],
    )  # fmt: skip
    return execution


def _library(app: EventStore, event: Any) -> Any:
    """The stored event as `eventsourcing`'s own mapper makes it."""
    assert isinstance(app.mapper, ShreddingMapper)
    return super(ShreddingMapper, app.mapper).to_stored_event(event)


@pytest.mark.parametrize("end", ["complete", "fail", "cancel"])
@pytest.mark.parametrize("extra", [{}, {"metadata": {"big": 2**70, "n": 3}}])
def test_fast_encoding_reads_back_as_the_librarys_and_declined_states_fall_back(
    app: EventStore, extra: dict[str, Any], end: str
) -> None:
    request = {"prompt": "What is Ray Serve? \U0001f680", "temperature": 0.3, **extra}
    events = _execution(request, end).collect_events()
    assert {type(e).__qualname__ for e in events} <= FAST_KINDS
    for event in events:
        fast, library = app.mapper.to_stored_event(event), _library(app, event)
        assert (fast.originator_id, fast.originator_version, fast.topic) == (
            library.originator_id, library.originator_version, library.topic,
        )  # fmt: skip
        read = app.mapper.to_domain_event(fast)
        assert vars(read) == vars(app.mapper.to_domain_event(library)) == vars(event)
        if extra and type(event).__qualname__ == "Execution.Started":
            assert fast.state == library.state  # beyond 64 bits: orjson declined it


def test_a_saved_execution_replays_to_the_same_state_and_result(app: EventStore) -> None:
    execution = _execution({"prompt": "hello"})
    app.save(execution)
    replayed = app.repository.get(execution.id)
    assert replayed.result == execution.result
    assert replayed.stream_events == execution.stream_events
    assert replayed.outcome == execution.outcome


def _read_by_library(app: EventStore, stored: Any) -> Any:
    return super(ShreddingMapper, app.mapper).to_domain_event(stored)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"metadata": {"big": 2**70}},  # an integer past 64 bits: the library reads it
        {"metadata": {"_type_": "x", "_data_": 1}},  # looks typed: the library reads it
        {"metadata": {"id": "chatcmpl-0000000000000000000000", "note": 'say "_type_"'}},
    ],
)
def test_fast_reading_gives_the_librarys_event_and_hands_over_what_could_differ(
    app: EventStore, extra: dict[str, Any]
) -> None:
    request = {"prompt": "What is Ray Serve? \U0001f680", **extra}
    events = _execution(request).collect_events()
    for event in events:
        stored = app.mapper.to_stored_event(event)
        if extra.get("metadata", {}).get("_type_"):
            continue  # the library's own encoding refuses such a state when it reads it
        assert vars(app.mapper.to_domain_event(stored)) == vars(_read_by_library(app, stored))
    assert isinstance(app.mapper, ShreddingMapper)
    fast_read = [app.mapper._fast_event(app.mapper.to_stored_event(e)) for e in events]
    started = fast_read[0]
    if extra.get("metadata", {}).get("big") or extra.get("metadata", {}).get("_type_"):
        assert started is None  # the Started event holds it: left to the library
        assert all(e is not None for e in fast_read[1:])
    else:
        assert all(e is not None for e in fast_read)  # read by orjson, every kind


def test_a_stored_nan_is_read_by_the_library(app: EventStore) -> None:
    event = _execution({"prompt": "hi", "temperature": float("nan")}).collect_events()[0]
    stored = _library(app, event)  # as the library wrote it: the NaN token orjson refuses
    assert app.mapper._fast_event(stored) is None
    assert str(app.mapper.to_domain_event(stored).request["temperature"]) == "nan"
