"""The result document rendered straight from an execution's facts: what each state shows,
in the API's order, and a copy the caller may change without touching the outcome."""

from __future__ import annotations

from domain.results import METADATA_KEYS, Outcome, result_document

FACTS = {
    "answer": {"content": "hi", "tool_calls": [], "finish_reason": "stop",
               "tool_results": [{"name": "calc", "result": 4}]},
    "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
    "cost_usd": 0.5, "model_resolved": "gpt-4o-mini", "provider": "openai",
    "attempts": [{"model": "gpt-4o-mini", "provider": "openai", "latency_ms": 2.0}],
    "fallback_used": False, "timings": {"start_write": 0.1, "permit": 0.2, "provider": 2.0},
    "duration_ms": 9.0, "request_metadata": {"user": "u-1"}, "routing": {"chain": ["x"]},
    "trace_id": "0af7651916cd43dd8448eb211c80319c",
    "error": {"type": "provider_error", "message": "upstream 503"},
}  # fmt: skip


def test_a_completed_document_lists_its_facts_in_the_apis_order() -> None:
    doc = result_document("e-1", "a-1", "completed", "cb:smart-chat", Outcome(**FACTS))
    assert list(doc) == ["execution_id", "agent_id", "status", "response", "usage", "metadata",
                         "error"]  # fmt: skip
    assert doc["response"] == {"content": "hi", "tool_calls": [], "finish_reason": "stop",
                               "tool_results": [{"name": "calc", "result": 4}]}  # fmt: skip
    assert doc["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                            "cached_tokens": 0, "estimated": False, "cost_usd": 0.5}  # fmt: skip
    meta = doc["metadata"]
    assert list(meta) == [k for k in METADATA_KEYS if k in meta]
    assert meta["provider_model"] is None  # a completed execution always says it
    shown = {"model": "gpt-4o-mini", "provider": "openai", "permit_ms": 0.0, "latency_ms": 2.0,
             "error": None}  # fmt: skip
    assert meta["attempt_log"] == [shown]
    assert meta["timings_ms"] == {"start_write": 0.1, "permit": 0.2, "provider": 2.0}
    assert meta["attempts"] == 1 and meta["fallback_used"] is False


def test_an_unfinished_document_shows_what_was_said_and_counts_no_more() -> None:
    doc = result_document("e-1", "a-1", "failed", "cb:smart-chat", Outcome(**FACTS))
    assert doc["response"] == {"content": "hi", "tool_calls": []}
    assert doc["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7,
                            "cost_usd": 0.5}  # fmt: skip
    assert "timings_ms" not in doc["metadata"] and "provider_model" not in doc["metadata"]
    assert doc["error"] == {"type": "provider_error", "message": "upstream 503",
                            "execution_id": None}  # fmt: skip
    running = result_document("e-2", "a-1", "running", "cb:smart-chat", Outcome())
    assert running["response"] is None and running["error"] is None
    assert list(running["metadata"]) == [
        "model_requested", "model_resolved", "provider", "attempts", "request_metadata"]


def test_the_document_is_a_copy_of_the_outcome() -> None:
    outcome = Outcome(**FACTS)
    doc = result_document("e-1", "a-1", "completed", "cb:smart-chat", outcome)
    doc["metadata"]["timings_ms"]["finish_write"] = 1.5
    doc["metadata"]["request_metadata"]["user"] = "changed"
    doc["metadata"]["routing"]["chain"] = []
    assert outcome.timings is not None and outcome.timings.finish_write is None
    assert outcome.request_metadata == {"user": "u-1"} and outcome.routing == {"chain": ["x"]}
