"""Pure domain functions: routing, parameters, pricing, codec, breaker, buckets, prompts."""

from __future__ import annotations

from typing import Any

import pytest

from actors.settings import DEFAULT_CONFIG, load_catalog
from domain import errors, retry, stream_log
from domain.breaker import CircuitBreaker
from domain.catalog import parse_catalog
from domain.codecs import openai_chat
from domain.llm import ChatMessage, LLMRequest
from domain.parameters import filter_parameters
from domain.pricing import cost_usd
from domain.prompting import build_messages
from domain.provider_health import HealthWindow
from domain.ratelimit import TokenBucket
from domain.routing import resolve

CATALOG = load_catalog(DEFAULT_CONFIG)
VIRTUAL = (
    "auto",
    "cb:smart-chat",
    "cb:cost-optimal",
    "cb:fastest",
    "cb:coding",
    "cb:analysis",
    "cb:creative",
)


@pytest.mark.parametrize("name", VIRTUAL)
def test_every_legacy_virtual_name_resolves_to_a_concrete_model(name: str) -> None:
    route = resolve(name, CATALOG, {"openai"})
    assert route.chain and all(m in CATALOG.models for m in route.chain)
    assert not route.chain[0].startswith("cb:")


def test_cost_optimal_picks_the_cheapest_candidate() -> None:
    route = resolve("cb:cost-optimal", CATALOG, {"openai"})
    prices = [
        CATALOG.models[m].input_price_per_mtok + CATALOG.models[m].output_price_per_mtok
        for m in route.chain
    ]
    assert prices == sorted(prices)


def test_unconfigured_provider_is_skipped_with_a_reason() -> None:
    with pytest.raises(errors.NoModelAvailable, match="not configured"):
        resolve("cb:smart-chat", CATALOG, set())


def test_unknown_model_is_a_typed_error() -> None:
    with pytest.raises(errors.ModelNotFound):
        resolve("cb:nonsense", CATALOG, {"openai"})


def test_reasoning_model_gets_max_completion_tokens_and_no_temperature() -> None:
    out = filter_parameters(CATALOG.models["o4-mini"], {"temperature": 0.2, "max_tokens": 64})
    assert out.wire == {"max_completion_tokens": 64}
    assert out.dropped == ["temperature"]


def test_parameters_are_clamped_to_the_model_range() -> None:
    out = filter_parameters(CATALOG.models["gpt-4o-mini"], {"max_tokens": 10**6, "top_p": 0.5})
    assert out.wire == {"max_tokens": 16384, "top_p": 0.5}
    assert out.adjusted == {"max_tokens": 16384}


def test_cost_is_tokens_times_catalog_price() -> None:
    model = CATALOG.models["gpt-4o-mini"]
    assert cost_usd(model, 1_000_000, 1_000_000) == pytest.approx(0.15 + 0.60)
    assert cost_usd(model, 120, 30) == pytest.approx((120 * 0.15 + 30 * 0.60) / 1e6)


def test_openai_codec_builds_the_wire_body() -> None:
    request = LLMRequest(
        model="gpt-4o-mini",
        messages=[ChatMessage(role="system", content="s"), ChatMessage(role="user", content="u")],
        parameters={"temperature": 0.5, "unknown": 1},
    )
    call, params = openai_chat.build_call(
        request, CATALOG.models["gpt-4o-mini"], "gpt-4o-mini", "k"
    )
    assert call.path == "/chat/completions"
    assert call.headers["authorization"] == "Bearer k"
    assert call.body == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}],
        "temperature": 0.5,
    }
    assert params.dropped == ["unknown"]


def test_openai_codec_parses_a_completion() -> None:
    body = {
        "id": "chatcmpl-1",
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }
    parsed = openai_chat.parse_response(body)
    assert (parsed.content, parsed.finish_reason, parsed.usage.total_tokens) == ("hi", "stop", 9)
    with pytest.raises(errors.ProviderError):
        openai_chat.parse_response({"choices": []})


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (500, "provider_error", True),
        (503, "provider_error", True),
        (429, "provider_rate_limited", True),
        (401, "provider_authentication_failed", False),
        (400, "provider_rejected_request", False),
    ],
)
def test_openai_error_statuses_map_to_stable_types(status: int, kind: str, retryable: bool) -> None:
    err = openai_chat.map_error(status, {"error": {"message": "boom"}}, 2.0)
    assert (err.type, err.retryable) == (kind, retryable)


def test_a_prompt_too_long_is_its_own_non_retryable_type() -> None:
    body = {
        "error": {
            "message": "This model's maximum context length is 128000 tokens.",
            "type": "invalid_request_error",
            "code": "context_length_exceeded",
        }
    }
    err = openai_chat.map_error(400, body, None)
    assert (err.type, err.status, err.retryable) == ("context_length_exceeded", 400, False)


def test_errors_survive_a_process_boundary_as_dicts() -> None:
    err = errors.RateLimited("slow down", retry_after=3, execution_id="e1")
    again = errors.CBError.from_dict(err.to_dict())
    assert isinstance(again, errors.RateLimited)
    assert (again.status, again.retry_after, again.execution_id) == (429, 3, "e1")


def test_breaker_opens_after_threshold_and_probes_after_reset() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10)
    breaker.record(False, now=0)
    assert breaker.allows(1)
    breaker.record(False, now=1)
    assert breaker.state == "open" and not breaker.allows(5)
    assert breaker.allows(12) and breaker.state == "half_open"
    assert not breaker.allows(12)  # one probe at a time
    breaker.record(True, now=13)
    assert breaker.state == "closed"


def test_breaker_opens_on_failure_rate_without_a_failure_streak() -> None:
    breaker = CircuitBreaker(failure_threshold=5, reset_after_s=10, min_samples=10, window_s=60)
    for i in range(9):  # alternate: never two failures in a row, a 44 % rate at most
        breaker.record(i % 2 == 0, now=float(i))
    assert breaker.state == "closed" and breaker.window_failure_rate(9.0) is None
    breaker.record(False, now=9.0)  # ten samples, half failed
    assert breaker.state == "open"
    assert breaker.opened_because == "failure rate 50% over 60 s"
    assert breaker.allows(20.0) and breaker.state == "half_open"
    breaker.record(True, now=20.0)  # the probe passed: a fresh window, closed
    assert breaker.state == "closed" and breaker.window_failure_rate(20.0) is None


def test_breaker_forgets_failures_older_than_its_window() -> None:
    breaker = CircuitBreaker(failure_threshold=50, reset_after_s=10, min_samples=4, window_s=10)
    for t in range(4):
        breaker.record(False, now=float(t))
        breaker.record(True, now=float(t) + 0.5)
    assert breaker.state == "open"  # 3 of 5 failed within the window
    late = CircuitBreaker(failure_threshold=50, reset_after_s=10, min_samples=4, window_s=10)
    for t in range(3):
        late.record(False, now=float(t))
    for t in range(20, 24):
        late.record(True, now=float(t))
    late.record(False, now=24.0)  # the early failures have left the window: 1 of 5
    assert late.state == "closed" and late.window_failure_rate(24.0) == pytest.approx(0.2)


def test_token_bucket_waits_for_refill() -> None:
    bucket = TokenBucket.per_minute(60, now=0.0, burst=2)
    assert bucket.take(0.0) == 0 and bucket.take(0.0) == 0
    assert bucket.take(0.0) == pytest.approx(1.0)
    assert bucket.take(1.0) == 0


def test_messages_are_system_then_context_then_user() -> None:
    definition = {"system_prompt": "Be exact.", "user_template": "Q: {prompt}"}
    context = [{"role": "user", "content": "earlier"}, {"role": "assistant", "content": "ok"}]
    messages = build_messages(definition, "2+2?", context)
    assert [(m.role, m.content) for m in messages] == [
        ("system", "Be exact."),
        ("user", "earlier"),
        ("assistant", "ok"),
        ("user", "Q: 2+2?"),
    ]
    assert build_messages({"user_template": "Solve it"}, "x", None)[-1].content == "Solve it\n\nx"


def test_config_references_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown provider"):
        parse_catalog(
            {
                "providers": {},
                "models": {
                    "m": {
                        "provider": "nope",
                        "context_window": 1,
                        "max_output_tokens": 1,
                        "input_price_per_mtok": 0,
                        "output_price_per_mtok": 0,
                    }
                },
            }
        )


def _stored(n: int) -> list[list]:
    return stream_log.pack(
        [
            {"id": i, "event": "content_chunk", "data": {"execution_id": "x", "delta": f"d{i}"}}
            for i in range(1, n + 1)
        ]
    )


def test_replay_sends_each_event_after_the_id_once_and_ends_with_the_terminal_one() -> None:
    stored = _stored(4)
    assert "execution_id" not in stored[0][2]  # not repeated in every stored event
    terminal = stream_log.terminal_event("completed", {"status": "completed"}, "x")
    for after in range(0, 6):
        events = stream_log.replay("x", stored, after, terminal, complete=True)
        assert [e["id"] for e in events] == list(range(after + 1, 6))
        assert all(e["data"]["execution_id"] == "x" for e in events[:-1] if events)
    assert stream_log.replay("x", stored, 2, terminal, True)[-1]["event"] == "execution_complete"


def test_replay_refuses_ids_it_cannot_replay_exactly() -> None:
    interrupted = stream_log.terminal_event("failed", {"error": {"type": "x"}}, "x")
    events = stream_log.replay("x", _stored(3), 3, interrupted, complete=False)
    assert [e["id"] for e in events] == [4] and events[0]["event"] == "error"
    with pytest.raises(errors.ResumeUnavailable) as lost:
        stream_log.replay("x", _stored(3), 4, interrupted, complete=False)
    assert lost.value.details == {"last_event_id": 4, "replayable_to": 3}
    with pytest.raises(errors.ResumeUnavailable):
        stream_log.replay("x", _stored(3), 9, None, complete=False)  # still running
    cancelled = stream_log.terminal_event("cancelled", {}, "x")
    assert cancelled[1]["type"] == "execution_cancelled"


def test_retry_waits_grow_with_jitter_and_honour_retry_after() -> None:
    assert retry.retry_after_s({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry.retry_after_s({"retry-after": "2"}) == 2.0
    assert retry.retry_after_s({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry.backoff_s(0, 0.25, None, 20, jitter=lambda: 0.0) == 0.1875
    assert retry.backoff_s(2, 0.25, None, 20, jitter=lambda: 1.0) == 1.25
    assert retry.backoff_s(0, 0.25, 3.0, 20, jitter=lambda: 0.5) == 3.0
    assert retry.backoff_s(0, 0.25, 300.0, 20, jitter=lambda: 0.5) == 20


def test_provider_health_needs_enough_recent_failures_to_be_unhealthy() -> None:
    window = HealthWindow()
    for i in range(4):
        window.record(False, 1000.0 + i, "provider_error")
    assert window.healthy("closed", 1010.0)  # four outcomes say too little
    for i in range(8):
        window.record(i % 4 == 0, 1010.0 + i, "provider_timeout")
    assert window.error_rate(1020.0) == 0.8333 and not window.healthy("closed", 1020.0)
    assert window.error_rate(1020.0 + 400) == 0.0 and window.healthy("closed", 1420.0)
    assert not window.healthy("open", 1420.0) and window.last_error == "provider_timeout"


def test_cached_prompt_tokens_are_priced_at_the_cached_rate() -> None:
    model = load_catalog(DEFAULT_CONFIG).models["gpt-4o-mini"]  # $0.15 in, $0.075 cached, $0.60
    assert cost_usd(model, 1000, 100, cached_tokens=400) == round(
        (600 * 0.15 + 400 * 0.075 + 100 * 0.60) / 1e6, 9
    )
    assert cost_usd(model, 1000, 100) == round((1000 * 0.15 + 100 * 0.60) / 1e6, 9)
    body = {
        "choices": [{"message": {"content": "x"}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": 1000,
            "completion_tokens": 100,
            "total_tokens": 1100,
            "prompt_tokens_details": {"cached_tokens": 400},
        },
    }
    assert openai_chat.parse_response(body).usage.cached_tokens == 400


def _strategy_catalog() -> Any:
    from domain.catalog import Catalog

    data = {
        "providers": {"p": {"type": "openai", "base_url": "http://x"}},
        "models": {
            name: {
                "provider": "p",
                "context_window": window,
                "max_output_tokens": 100,
                "capabilities": caps,
                "input_price_per_mtok": price,
                "output_price_per_mtok": price,
                "latency_prior_ms": prior,
                "strengths": strengths,
            }
            for name, window, caps, price, prior, strengths in (
                ("a", 1000, ["chat", "tools"], 3.0, 300, {"coding": 0.9}),
                ("b", 8000, ["chat", "tools"], 1.0, 900, {"creative": 0.9}),
                ("c", 8000, ["chat"], 0.5, 100, {}),
            )
        },
        "virtual_models": {
            s: {"strategy": s, "candidates": ["a", "b", "c"], "task": t}
            for s, t in (
                ("balanced", None),
                ("cost_optimized", None),
                ("performance", None),
                ("reliability", None),
                ("task_specific", "creative"),
            )
        },
    }
    catalog: Catalog = parse_catalog(data)
    return catalog


def test_each_strategy_ranks_its_candidates() -> None:
    from domain.routing import ModelStats

    catalog = _strategy_catalog()
    chain = {s: resolve(s, catalog, {"p"}).chain for s in catalog.virtual_models}
    assert chain == {
        "balanced": ["a", "b", "c"],
        "cost_optimized": ["c", "b", "a"],
        "performance": ["c", "a", "b"],  # priors until there is data
        "reliability": ["a", "b", "c"],  # no errors seen: the configured order
        "task_specific": ["b", "a", "c"],  # creative: b's strength, then quality
    }
    observed = {
        "c": ModelStats(latency_ms=2000.0, error_rate=0.5, samples=10),
        "a": ModelStats(latency_ms=50.0, error_rate=0.2, samples=2),  # too few samples
    }
    assert resolve("performance", catalog, {"p"}, stats=observed).chain == ["a", "b", "c"]
    assert resolve("reliability", catalog, {"p"}, stats=observed).chain == ["b", "a", "c"]


def test_routing_filters_on_capability_context_and_breakers_with_reasons() -> None:
    from domain.routing import Needs

    catalog = _strategy_catalog()
    route = resolve(
        "balanced",
        catalog,
        {"p"},
        needs=Needs(capabilities=frozenset({"tools"}), prompt_tokens=900, max_tokens=200),
    )
    assert route.chain == ["b"]
    assert route.explain()["candidates"] == [
        {"model": "b", "skipped": None},
        {"model": "a", "skipped": "context window 1000 < 1100 tokens needed"},
        {"model": "c", "skipped": "lacks tools"},
    ]
    with pytest.raises(errors.NoModelAvailable, match="circuit open"):
        resolve("balanced", catalog, {"p"}, open_providers={"p"})
    with pytest.raises(errors.CapabilityNotSupported):
        resolve("c", catalog, {"p"}, needs=Needs(capabilities=frozenset({"tools"})))
    with pytest.raises(errors.ContextLengthExceeded):
        resolve("balanced", catalog, {"p"}, needs=Needs(prompt_tokens=9000))


def test_a_tenant_policy_maps_names_allows_models_and_caps_parameters() -> None:
    from domain.catalog import VirtualModel
    from domain.tenant_models import TenantModelPolicy

    catalog = _strategy_catalog()
    policy = TenantModelPolicy(
        mappings={"balanced": VirtualModel(strategy="cost_optimized", candidates=("a", "b"))},
        allowed_models=frozenset({"a", "b"}),
        parameter_defaults={"temperature": 0.1},
        parameter_caps={"max_tokens": 50},
    )
    route = resolve(
        "balanced",
        catalog,
        {"p"},
        virtual_models=policy.virtual_models(catalog),
        allowed_models=policy.allowed_models,
    )
    assert (route.strategy, route.chain) == ("cost_optimized", ["b", "a"])
    with pytest.raises(errors.ModelNotAllowed):
        resolve("c", catalog, {"p"}, allowed_models=policy.allowed_models)
    assert policy.parameters({"max_tokens": 500}) == (
        {"temperature": 0.1, "max_tokens": 50},
        {"max_tokens": 50},
    )


def test_a_change_records_who_and_from_where_and_gives_both_back() -> None:
    from domain.audit import recorded_by, split_by

    assert split_by(recorded_by("key:k1", "10.0.0.5")) == ("key:k1", "10.0.0.5")
    assert split_by(recorded_by("jwt:ann@example.com", "::1")) == ("jwt:ann@example.com", "::1")
    assert split_by(recorded_by("platform-admin", None)) == ("platform-admin", None)
    assert split_by(None) == (None, None)
