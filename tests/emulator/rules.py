"""Scripting rules, and the plan of one reply: what the emulator answers, before any wire
format gives it shape.

A test scripts rules (`ProviderEmulator.script`); each request is read into an `Ask` by its
dialect, the newest matching rule is picked, and `Rules.plan` decides the reply: an error
status, or a `Plan` (content, tool calls, finish reason, token counts, stream pieces, pacing)
that the dialect then encodes as a whole body or as stream frames.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PIECE_CHARS = 4
ECHO_LIMIT = 200


def split_pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Split ``text`` into consecutive pieces of ``size`` characters (last may be shorter)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass
class Rule:
    """One scripted answer; see `ProviderEmulator.script` for what each field does."""

    match: str
    content: str | None
    chunks: list[str] | None
    prompt_tokens: int | None
    completion_tokens: int | None
    status: int
    error_body: dict[str, Any] | None
    headers: dict[str, str] | None
    delay: float
    chunk_delay: float
    fail_after_chunks: int | None
    remaining: int | None
    finish_reason: str
    tool_calls: list[dict[str, Any]] | None = field(default=None)
    stream_usage: bool = True
    model: str | None = None
    with_tool_results: bool = False
    probability: float = 1.0


@dataclass(frozen=True)
class Ask:
    """What the rules read of one request, whatever its dialect."""

    texts: list[str]
    # only OpenAI-format requests give these: the model (rules limited to a model match only
    # its requests), the text the echo reply repeats (else the last text), the tool results
    # (for `with_tool_results`), and whether the stream should end with a usage chunk
    model: str | None = None
    echo: str | None = None
    tool_results: list[str] | None = None
    include_usage: bool = False
    # OpenAI-format requests, as ever, also: count tool-call arguments as completion tokens,
    # keep scripted token counts and error bodies even when empty, and drop a whole reply's
    # connection for `fail_after_chunks`; the other dialects have always done none of this
    openai: bool = False


@dataclass
class Plan:
    """A successful reply as the rules decided it, before any provider's format."""

    content: str | None = None
    tool_calls: list[dict[str, Any]] | None = None  # OpenAI's shape, each with an id
    finish: str = "stop"  # OpenAI's finish reason; dialects translate it
    prompt: int = 0
    completion: int = 0
    pieces: list[str] = field(default_factory=list)  # the content, as streamed
    headers: dict[str, str] | None = None
    chunk_delay: float = 0.0
    fail_after: int | None = None  # deltas sent before the connection drops
    drop_whole: bool = False  # with `fail_after`, a whole reply drops the connection too
    include_usage: bool = False  # OpenAI streams: end with a usage chunk


def normalize_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """Bring a scripted tool call into OpenAI's shape; ``id`` may stay None (filled per reply)."""
    fn = call.get("function")
    if not isinstance(fn, dict):
        fn = {"name": call.get("name"), "arguments": call.get("arguments", "")}
    arguments = fn.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id"),
        "type": "function",
        "function": {"name": fn.get("name"), "arguments": arguments},
    }


class Rules:
    """The scripted rules, newest first, shared by the server's thread and the test's."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def add(self, rule: Rule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def remove(self, match: str) -> None:
        """Drop every rule scripted for `match`."""
        with self._lock:
            self._rules[:] = [rule for rule in self._rules if rule.match != match]

    def pick(self, texts: Iterable[str], model: str | None = None) -> Rule | None:
        """The newest rule matching these texts (and model), counted against its `times`."""
        texts = list(texts)
        with self._lock:
            rules = self._rules
            for i in range(len(rules) - 1, -1, -1):
                rule = rules[i]
                if rule.model is not None and rule.model != model:
                    continue
                if rule.match == "" or any(rule.match in t for t in texts):
                    if rule.probability < 1.0 and random.random() >= rule.probability:
                        continue  # this time it does not apply: an older rule may
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            del rules[i]
                    return rule
        return None

    async def plan(self, ask: Ask) -> tuple[Rule | None, Plan | None]:
        """What the rules say to answer (the echo reply when none matches), after the rule's
        delay; `(rule, None)` when the matching rule is an error status."""
        rule = self.pick(ask.texts, ask.model) if self._rules else None
        if rule is not None and rule.delay > 0:
            await asyncio.sleep(rule.delay)
        if rule is not None and rule.status != 200:
            return rule, None
        content = rule.content if rule is not None else None
        if rule is not None and rule.with_tool_results and ask.tool_results is not None:
            content = " ".join([content or "From the tools:", " | ".join(ask.tool_results)])
        tool_calls = None
        if rule is not None and rule.tool_calls:
            tool_calls = [{**c, "id": c["id"] or "call_" + os.urandom(12).hex()}
                          for c in rule.tool_calls]  # fmt: skip
        if content is None and tool_calls is None:
            echo = ask.echo if ask.echo is not None else (ask.texts[-1] if ask.texts else "")
            content = ("Echo: " + echo)[:ECHO_LIMIT]
        finish = rule.finish_reason if rule is not None else "stop"
        if tool_calls and finish == "stop":
            finish = "tool_calls"
        prompt = rule.prompt_tokens if rule is not None else None
        if prompt is None or not (prompt or ask.openai):
            prompt = sum(len(t.split()) + 3 for t in ask.texts)
        completion = rule.completion_tokens if rule is not None else None
        if completion is None or not (completion or ask.openai):
            completion = len((content or "").split())
            if ask.openai:
                completion += sum(len(c["function"]["arguments"].split()) for c in tool_calls or ())
        pieces = rule.chunks if rule is not None else None
        return rule, Plan(
            content=content,
            tool_calls=tool_calls,
            finish=finish,
            prompt=prompt,
            completion=completion,
            pieces=pieces if pieces is not None else split_pieces(content or ""),
            headers=rule.headers if rule is not None else None,
            chunk_delay=rule.chunk_delay if rule is not None else 0.0,
            fail_after=rule.fail_after_chunks if rule is not None else None,
            drop_whole=ask.openai,
            include_usage=ask.include_usage and (rule is None or rule.stream_usage),
        )
