"""Turn an agent definition and an execute request into chat messages."""

from __future__ import annotations

import json
from typing import Any

from domain.llm import ChatMessage


def build_messages(definition: dict[str, Any], prompt: str, context: Any) -> list[ChatMessage]:
    """System prompt, then prior context messages, then the user turn from the template."""
    system = system_text(definition)
    history: list[ChatMessage] = []
    if isinstance(context, list):
        history = [ChatMessage(role=m["role"], content=m["content"]) for m in context]
    elif isinstance(context, (dict, str)) and context:
        text = context if isinstance(context, str) else json.dumps(context, sort_keys=True)
        system = f"{system}\n\nContext:\n{text}".strip()
    user = render_user_turn(definition.get("user_template") or "", prompt)
    messages = [ChatMessage(role="system", content=system)] if system else []
    return [*messages, *history, ChatMessage(role="user", content=user)]


def system_text(definition: dict[str, Any]) -> str:
    """An agent's system prompt with its context instructions ("" when it has neither)."""
    system = definition.get("system_prompt") or ""
    if definition.get("context_instructions"):
        system = f"{system}\n\n{definition['context_instructions']}".strip()
    return system


def render_user_turn(template: str, prompt: str) -> str:
    """Put the prompt where the template says `{prompt}`; else after the template."""
    for placeholder in ("{{prompt}}", "{prompt}"):
        if placeholder in template:
            return template.replace(placeholder, prompt)
    return f"{template}\n\n{prompt}" if template.strip() else prompt
