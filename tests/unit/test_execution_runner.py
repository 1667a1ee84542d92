"""ExecutionRunner, in-process: the execution loop over a real SQLite store, fake peer
actors and a MockTransport provider."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from eventsourcing.persistence import PersistenceError

from actors.event_store import AsyncEventStore
from actors.execution_runner import ExecutionRunner
from actors.live_stream import LiveStream
from domain.agent import Agent
from domain.attempts import MAX_ATTEMPTS
from domain.config import Config
from domain.errors import CBError
from domain.execution import Execution
from domain.run_plan import agent_plan
from tests.unit.fakes import (
    FakePeers,
    Method,
    ScriptedProvider,
    completion,
    error,
    streamed,
)

TENANT = str(uuid.uuid4())


pytestmark = pytest.mark.usefixtures("openai_key")


async def _runner(store: AsyncEventStore, fakes: FakePeers) -> ExecutionRunner:
    fakes.config_actor.data["providers"]["openai"]["retry_backoff_s"] = 0.001
    runner = ExecutionRunner(Config(providers={}, models={}), store, TENANT, fakes.peers())
    await runner.routing.refresh()  # what the tenant actor does when it loads
    return runner


def _agent(**definition: object) -> Agent:
    return Agent(
        id=uuid.uuid4(),
        tenant_id=TENANT,
        definition={"name": "Helper", "model": "cb:smart-chat", "system_prompt": "Be brief.",
                    "parameters": {"temperature": 0.3}, **definition},
    )  # fmt: skip


async def _stored(store: AsyncEventStore, execution_id: str) -> Execution:
    return await store.run(store.app.repository.get, uuid.UUID(execution_id))


async def test_an_execution_answers_with_real_counts_and_records_its_outcome(store) -> None:
    provider = ScriptedProvider(completion("Ray Serve serves models.", 20, 6))
    runner = await _runner(store, FakePeers(provider))
    execution_id = str(uuid.uuid4())
    result = await runner.execute(
        agent_plan(_agent(), {"prompt": "What is Ray Serve?"}), execution_id
    )

    assert result["status"] == "completed"
    assert result["response"]["content"] == "Ray Serve serves models."
    assert result["usage"]["prompt_tokens"] == 20 and result["usage"]["total_tokens"] == 26
    assert result["usage"]["cost_usd"] > 0
    meta = result["metadata"]
    assert meta["model_requested"] == "cb:smart-chat"
    assert meta["model_resolved"] == provider.requests[0]["json"]["model"]
    assert meta["attempts"] == 1 and meta["fallback_used"] is False
    assert set(meta["timings_ms"]) == {"start_write", "permit", "provider", "finish_write"}
    sent = provider.requests[0]["json"]["messages"]
    assert sent[0] == {"role": "system", "content": "Be brief."}
    assert sent[-1]["content"] == "What is Ray Serve?"

    stored = await _stored(store, execution_id)
    assert stored.status == "completed" and stored.outcome.usage.total_tokens == 26
    # the stored document is the answer, less what only the live answer knew
    del meta["timings_ms"]["finish_write"]
    assert stored.result == result


async def test_a_provider_failure_is_recorded_with_every_attempt_and_raised(store) -> None:
    runner = await _runner(store, FakePeers(ScriptedProvider(error(500))))
    execution_id = str(uuid.uuid4())
    with pytest.raises(CBError) as raised:
        await runner.execute(
            agent_plan(_agent(model="gpt-4o-mini"), {"prompt": "hi"}), execution_id
        )
    assert raised.value.execution_id == execution_id
    stored = await _stored(store, execution_id)
    assert stored.status == "failed"
    assert stored.result["error"]["type"] == raised.value.type
    assert stored.result["metadata"]["attempts"] == 3  # max_retries 2, one model
    assert len(raised.value.details["attempts"]) == 3


def _mortgage_turns() -> ScriptedProvider:
    """A model that calls the mortgage calculator, then answers with its result."""
    call = {"id": "call_1", "type": "function", "function": {
        "name": "mortgage_calculator",
        "arguments": json.dumps({"price": 400000, "annual_rate_percent": 6.5}),
    }}  # fmt: skip
    return ScriptedProvider(completion(None, tool_calls=[call]), completion("About 2528/mo."))


async def test_a_tool_call_runs_the_tool_and_answers_the_model(store) -> None:
    provider = _mortgage_turns()
    runner = await _runner(store, FakePeers(provider))
    agent = _agent(tools=["mortgage_calculator"])
    result = await runner.execute(
        agent_plan(agent, {"prompt": "Monthly payment?"}), str(uuid.uuid4())
    )

    assert result["response"]["content"] == "About 2528/mo."
    [tool] = result["response"]["tool_results"]
    assert tool["name"] == "mortgage_calculator"
    assert tool["result"]["monthly_payment"] == pytest.approx(2528.27)
    assert result["metadata"]["tool_calls"] == 1 and result["metadata"]["attempts"] == 2
    answered = provider.requests[1]["json"]["messages"][-1]
    assert answered["role"] == "tool" and answered["tool_call_id"] == "call_1"
    assert result["usage"]["total_tokens"] == 34  # both turns counted


def _saves_noted(store: AsyncEventStore, monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """(event names, synced) of each save the store is asked for from now on."""
    noted: list[tuple] = []
    save_events = store.save_events

    def noting(events: list, synced: bool = True) -> asyncio.Future[None]:
        noted.append((tuple(type(e).__name__ for e in events), synced))
        return save_events(events, synced)

    monkeypatch.setattr(store, "save_events", noting)
    return noted


async def test_what_a_client_has_not_heard_of_is_saved_crash_safe_and_flushed_with_what_it_hears(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = _mortgage_turns()
    runner = await _runner(store, FakePeers(provider))
    noted = _saves_noted(store, monkeypatch)
    agent = _agent(tools=["mortgage_calculator"])
    await runner.execute(agent_plan(agent, {"prompt": "Monthly payment?"}), str(uuid.uuid4()))
    # the start and the tool's step unflushed (they outlive any process's death); the end,
    # the first the client hears of it, flushed, and with it all before it
    assert [synced for _, synced in noted] == [False, False, True]
    assert "Started" in noted[0][0] and noted[-1][0][-1] == "Completed"

    noted.clear()
    streaming = ScriptedProvider(streamed(["Ray ", "Serve ", "streams."], prompt_tokens=9))
    runner = await _runner(store, FakePeers(streaming))
    _, live = _stream(runner, checkpoint_s=0.0)  # a checkpoint at every chunk
    assert [e async for e in _watched(live)]
    # a stream's client hears of it at once: its start flushed; its checkpoints, of what it
    # was already sent, not; its end flushed
    assert "Started" in noted[0][0] and noted[0][1] is True
    assert noted[-1] == (("Completed",), True) and len(noted) > 2
    assert not any(synced for _, synced in noted[1:-1])


async def test_an_unknown_model_fails_before_any_call(store) -> None:
    provider = ScriptedProvider()
    runner = await _runner(store, FakePeers(provider))
    execution_id = str(uuid.uuid4())
    with pytest.raises(CBError) as raised:
        await runner.execute(
            agent_plan(_agent(model="cb:no-such-model"), {"prompt": "hi"}), execution_id
        )
    assert raised.value.type == "model_not_found" and provider.requests == []
    stored = await _stored(store, execution_id)
    assert stored.status == "failed" and "attempt_log" not in stored.result["metadata"]


async def _left_running(
    store: AsyncEventStore, runner: ExecutionRunner, tools: tuple[str, ...] = (), **kw: object
) -> Execution:
    """An execution a dead incarnation of the actor left running (written before `runner`
    was born), having called `tools`."""
    left = Execution(
        id=uuid.uuid4(), tenant_id=TENANT, agent_id="a", agent_version=1,
        request={"prompt": "hi"}, model_requested="cb:smart-chat", stream=False, **kw,
    )  # fmt: skip
    for n, name in enumerate(tools):
        left.call_tool(f"call_{n}", name, {}, 1)
    await store.save(left)
    runner.interrupted.born = time.time() + 0.001
    return left


async def test_interrupted_executions_that_may_not_run_again_are_failed_at_once(store) -> None:
    fakes = FakePeers()
    runner = await _runner(store, fakes)
    side_effect = await _left_running(store, runner, tools=("roi_calculator", "send_email"))
    judged = await _left_running(store, runner, kind="judge")
    fakes.projection.running = [{"execution_id": str(e.id)} for e in (side_effect, judged)]
    assert await runner.fail_interrupted() == 2
    for left in (side_effect, judged):
        stored = await _stored(store, str(left.id))
        assert stored.status == "failed"
        assert stored.result["error"]["type"] == "execution_interrupted"
    with pytest.raises(CBError) as raised:  # a retry of it is told, never rerun
        await runner.interrupted.claim(str(side_effect.id))
    assert raised.value.type == "execution_interrupted"


async def test_an_interrupted_execution_nobody_comes_back_for_is_failed_after_the_grace(
    store,
) -> None:
    fakes = FakePeers()
    runner = await _runner(store, fakes)
    runner.interrupted.grace_s = 0.05
    left = await _left_running(store, runner, tools=("mortgage_calculator",))
    fakes.projection.running = [{"execution_id": str(left.id)}]
    assert await runner.fail_interrupted() == 0
    assert (await _stored(store, str(left.id))).status == "running"  # waiting for its client
    await asyncio.sleep(0.3)
    stored = await _stored(store, str(left.id))
    assert stored.status == "failed" and stored.result["error"]["type"] == "execution_interrupted"


async def test_a_retried_interrupted_execution_runs_again_as_a_new_attempt(store) -> None:
    provider = ScriptedProvider(completion("The second attempt's answer.", 9, 5))
    fakes = FakePeers(provider)
    runner = await _runner(store, fakes)
    runner.interrupted.grace_s = 0.05
    left = await _left_running(store, runner)
    fakes.projection.running = [{"execution_id": str(left.id)}]
    await runner.fail_interrupted()
    execution_id = str(left.id)

    restart = await runner.interrupted.claim(execution_id)
    assert restart is not None
    with pytest.raises(CBError):  # claimed: a second caller does not run it too
        await runner.interrupted.claim(execution_id)
    plan = agent_plan(_agent(model="gpt-4o-mini"), {"prompt": "hi"})
    result = await runner.execute(plan, execution_id, restart)
    assert result["status"] == "completed"
    assert result["response"]["content"] == "The second attempt's answer."
    assert len(provider.requests) == 1

    await asyncio.sleep(0.2)  # the grace ran out: the completed attempt stands
    stored = await _stored(store, execution_id)
    assert stored.status == "completed" and stored.attempt == 2
    assert stored.outcome.usage.total_tokens == 14
    kinds = [type(e).__name__ for e in await _events(store, execution_id)]
    assert kinds == ["Started", "AttemptRestarted", "ModelResolved", "Completed"]
    with pytest.raises(CBError) as raised:
        await runner.interrupted.claim(execution_id)
    assert raised.value.type == "execution_interrupted"
    assert await runner.interrupted.claim(str(uuid.uuid4())) is None  # never started: run it


async def test_attempts_are_bounded(store) -> None:
    runner = await _runner(store, FakePeers())
    left = await _left_running(store, runner)
    for _ in range(MAX_ATTEMPTS - 1):
        left.restart_attempt({"type": "execution_interrupted"})
    await store.save(left)
    runner.interrupted.born = time.time() + 0.001
    with pytest.raises(CBError) as raised:
        await runner.interrupted.claim(str(left.id))
    assert raised.value.type == "execution_interrupted"
    assert (await _stored(store, str(left.id))).status == "failed"


async def _events(store: AsyncEventStore, execution_id: str) -> list[object]:
    return list(await store.run(lambda: list(store.app.events.get(uuid.UUID(execution_id)))))


async def test_an_unexpected_failure_mid_execution_is_recorded_never_left_running(
    store, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever breaks under an execution (here its provider actor's permit call), it ends
    recorded `failed` with `internal_error`; the cause is in the log, not in the answer."""
    fakes = FakePeers(ScriptedProvider(completion("never sent", 1, 1)))
    runner = await _runner(store, fakes)

    async def lost(*_: object) -> dict[str, object]:
        raise RuntimeError("secret-free detail of a lost peer")

    for actor in fakes.providers.values():
        actor.lease = Method(lost)
    execution_id = str(uuid.uuid4())
    with pytest.raises(CBError) as raised:
        await runner.execute(
            agent_plan(_agent(model="gpt-4o-mini"), {"prompt": "hi"}), execution_id
        )
    assert raised.value.type == "internal_error" and raised.value.message == "internal error"
    stored = await _stored(store, execution_id)
    assert stored.status == "failed" and stored.result["error"]["type"] == "internal_error"
    assert "secret-free detail" not in json.dumps(stored.result)
    assert "failed unexpectedly" in caplog.text


async def test_a_stream_whose_start_the_store_refuses_ends_with_a_503_error_event(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store is down when a streamed execution starts: its stream ends at once with
    `service_unavailable` (naming the execution to look up later), never waits on."""
    runner = await _runner(store, FakePeers(ScriptedProvider(completion("never sent", 1, 1))))

    def refused(events: list[object], synced: bool = True) -> asyncio.Future[None]:
        done = asyncio.get_running_loop().create_future()
        done.set_exception(PersistenceError("the store is down"))
        return done

    monkeypatch.setattr(store, "save_events", refused)
    execution_id, live = _stream(runner, checkpoint_s=60.0)
    batches = [b async for b in _watched(live)]
    last = batches[-1][-1]
    assert last["event"] == "error", batches
    assert last["data"]["type"] == "service_unavailable"
    assert last["data"]["execution_id"] == execution_id
    assert runner.unrecorded.pending.keys() == {execution_id}  # recorded once it is back
    runner.unrecorded._task.cancel()  # type: ignore[union-attr]


async def test_a_stream_whose_checkpoint_the_store_holds_ends_within_the_bound(
    store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store goes down mid-stream: a checkpoint's save is held (retrying), and so would be
    the end's. The stream still ends within the write bound, with `service_unavailable`
    naming the execution, recorded once the store is back; it does not wait the outage out."""
    provider = ScriptedProvider(streamed(["Ray ", "Serve ", "streams."]))
    runner = await _runner(store, FakePeers(provider))
    runner.write_timeout_s = 0.3
    saved = store.save_events
    writes: list[int] = []

    def down_after_the_start(events: list[object], synced: bool = True) -> asyncio.Future[None]:
        writes.append(len(events))
        if len(writes) == 1:
            return saved(events, synced)
        return asyncio.get_running_loop().create_future()  # held: never settles

    monkeypatch.setattr(store, "save_events", down_after_the_start)
    execution_id, live = _stream(runner, checkpoint_s=0.0)
    started = time.monotonic()
    batches = [b async for b in _watched(live)]
    events = [e for batch in batches for e in batch]
    assert [e["data"] for e in events if e["event"] == "content_chunk"][:1], events
    last = events[-1]
    assert last["event"] == "error", events
    assert last["data"]["type"] == "service_unavailable"
    assert last["data"]["execution_id"] == execution_id
    assert time.monotonic() - started < 3.0
    assert len(writes) >= 2  # the start, then at least one checkpoint
    assert runner.unrecorded.pending.keys() == {execution_id}
    runner.unrecorded._task.cancel()  # type: ignore[union-attr]


async def test_a_streamed_execution_checkpoints_and_ends_completed(store) -> None:
    provider = ScriptedProvider(streamed(["Ray ", "Serve ", "streams."], prompt_tokens=9))
    runner = await _runner(store, FakePeers(provider))
    execution_id, live = _stream(runner, checkpoint_s=0.0)
    events = [e for batch in [b async for b in _watched(live)] for e in batch]
    assert events[-1]["event"] == "execution_complete", events
    stored = await _stored(store, execution_id)
    assert stored.status == "completed"
    assert stored.result["response"]["content"] == "Ray Serve streams."
    assert stored.result["usage"]["prompt_tokens"] == 9


async def test_a_streams_first_content_goes_out_before_the_chunks_read_behind_it(store) -> None:
    """The provider's chunks arrive in one read: the first content still reaches the
    stream's watchers alone, not with the rest of the answer (time to first content)."""
    provider = ScriptedProvider(streamed(["Ray ", "Serve ", "streams."], prompt_tokens=9))
    runner = await _runner(store, FakePeers(provider))
    _, live = _stream(runner, checkpoint_s=60.0)
    batches = [[e["event"] for e in batch] async for batch in _watched(live)]
    with_content = [b for b in batches if "content_chunk" in b]
    assert with_content[0].count("content_chunk") == 1, batches
    assert sum(b.count("content_chunk") for b in with_content) == 3, batches
    assert batches[-1][-1] == "execution_complete", batches


def _stream(runner: ExecutionRunner, checkpoint_s: float) -> tuple[str, LiveStream]:
    """A streamed execution of a one-prompt agent, started; its id and its live stream."""
    execution_id = str(uuid.uuid4())
    live = LiveStream(execution_id, cancel_on_disconnect=False, checkpoint_s=checkpoint_s)
    plan = agent_plan(_agent(model="gpt-4o-mini"), {"prompt": "hi"})
    live.task = asyncio.get_running_loop().create_task(
        runner.execute_stream(plan, execution_id, live)
    )
    return execution_id, live


async def _watched(live: LiveStream) -> AsyncIterator[list[dict[str, object]]]:
    """The stream's batches; fails (rather than waits on) a stream that never ends."""
    watch = live.watch(0)
    while True:
        try:
            yield await asyncio.wait_for(anext(watch), timeout=5)
        except StopAsyncIteration:
            return
