"""Guardrails applied to one execution: the tenant's checks, then its agent's, on what the
caller sent (before the model) and on what the model answered (after it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.guardrails import Check, Decision, Guardrails, blocked_error, screen_input
from domain.llm import ChatMessage


@dataclass
class Screened:
    """The messages the model will see (redacted where a check said so), the input checks
    that fired, the one that blocked (if any), and what the output checks need."""

    messages: list[ChatMessage]
    decisions: list[Decision] = field(default_factory=list)
    blocked: Decision | None = None
    input: list[Check] = field(default_factory=list)  # also run on server-side tool results
    output: list[Check] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def guards_output(self) -> bool:
        """Whether the answer passes through output checks or placeholder restoration."""
        return bool(self.output or self.placeholders)


def screen(
    messages: list[ChatMessage],
    agent_system: str,
    tenant: dict[str, Any] | None,
    agent: dict[str, Any] | None,
) -> Screened:
    """Run the input checks over every message the caller sent: all but the agent's own
    system prompt (the tenant's configuration, not the caller's data)."""
    if not tenant and not agent:
        return Screened(messages=messages)
    merged = Guardrails.merged(
        Guardrails.parse(tenant) if tenant else None, Guardrails.parse(agent) if agent else None
    )
    if not merged.input:
        return Screened(messages=messages, output=list(merged.output))
    screened = [
        i
        for i, m in enumerate(messages)
        if m.content and not (m.role == "system" and m.content == agent_system)
    ]
    verdict = screen_input([messages[i].content or "" for i in screened], list(merged.input))
    out = list(messages)
    for i, text in zip(screened, verdict.texts, strict=True):
        if text != messages[i].content:
            out[i] = messages[i].model_copy(update={"content": text})
    return Screened(
        messages=out,
        decisions=list(verdict.decisions),
        blocked=verdict.blocked,
        input=list(merged.input),
        output=list(merged.output),
        placeholders=dict(verdict.placeholders),
    )


def screen_tool_results(screened: Screened, texts: list[str]) -> tuple[list[str], list[Decision]]:
    """The input checks on server-side tool results before they go back to the model: the
    texts as the model will see them, and the checks that fired (a block among them is
    `blocked` on the result's verdict: the caller raises it). Placeholders continue the
    input's numbering and are restored in the answer like the input's."""
    if not screened.input:
        return texts, []
    verdict = screen_input(texts, screened.input, screened.placeholders)
    if verdict.blocked is not None:
        raise blocked_error(verdict.blocked)
    screened.placeholders.update(verdict.placeholders)
    return list(verdict.texts), list(verdict.decisions)


def pieces(text: str, size: int = 48) -> list[str]:
    """A whole text as stream chunks: cut after whitespace, each about `size` characters."""
    out: list[str] = []
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
        out.append(text[start:end])
        start = end
    return out


def tool_call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Whole tool calls as one stream delta each (OpenAI's `tool_calls` delta shape)."""
    return [{"index": i, **call} for i, call in enumerate(calls)]
