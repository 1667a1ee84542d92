"""Prompt assembly (`domain/prompting.py`)."""

from __future__ import annotations

from domain.prompting import build_messages


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
