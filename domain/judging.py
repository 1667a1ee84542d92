"""Judges: a model that scores an ended execution's answer against a rubric.

A `JudgeSpec` names the model (virtual or concrete), the rubric (one of `RUBRICS`, or a
name of the tenant's own with its `criteria`), and the share of executions judged. The
judge is asked for one JSON object, `{"score": number in [0, 1], "reason": string}`;
`parse_verdict` reads it strictly (a ```json fence around it is the one latitude).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

RUBRICS = {
    "relevance": "Does the answer address what was asked, fully and without digression?",
    "correctness": "Is the answer factually and logically correct? Penalise every error, "
    "unsupported claim or calculation mistake.",
    "format": "Does the answer follow the format asked for (structure, length, language, "
    "JSON or code when requested) and read cleanly?",
}
MAX_QUESTION_CHARS = 12_000
MAX_ANSWER_CHARS = 12_000
MAX_TOOL_CHARS = 6_000
JUDGE_MAX_TOKENS = 300
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL)


class JudgeSpec(BaseModel):
    """An agent's `judge`, a tenant's default judge, or an experiment's."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200, description="virtual or concrete model")
    rubric: str = Field(default="relevance", min_length=1, max_length=100)
    criteria: str | None = Field(
        default=None, max_length=8000, description="what to judge on (a rubric of one's own)"
    )
    sample_rate: float = Field(default=1.0, ge=0.0, le=1.0, description="share judged")

    @model_validator(mode="after")
    def _known_rubric(self) -> JudgeSpec:
        if self.rubric not in RUBRICS and not self.criteria:
            raise ValueError(
                f"rubric {self.rubric!r} is not one of {', '.join(RUBRICS)}: "
                "give its criteria to use a rubric of your own"
            )
        return self

    def instructions(self) -> str:
        """The rubric's criteria: the spec's own, after the built-in rubric's if any."""
        return "\n".join(t for t in (RUBRICS.get(self.rubric), self.criteria) if t)


def sampled(execution_id: str, rate: float) -> bool:
    """Whether the execution is judged: a stable draw from its id (so a replay of the
    same decision gives the same answer), true for a share `rate` of ids."""
    if rate >= 1.0:
        return True
    draw = int(hashlib.sha256(execution_id.encode()).hexdigest()[:12], 16) / float(16**12)
    return draw < rate


def judge_messages(
    spec: JudgeSpec, question: str, answer: str, tool_results: list[Any] | None = None
) -> list[dict[str, str]]:
    """The judge's prompt: its role and rubric, then the exchange being judged."""
    system = (
        "You are an impartial evaluator. Score the assistant's answer to the user's request "
        f"against this rubric ({spec.rubric}):\n{spec.instructions()}\n\n"
        'Reply with one JSON object and nothing else: {"score": <number from 0 to 1>, '
        '"reason": "<one or two sentences>"}. 1 is a perfect answer, 0 a useless one.'
    )
    parts = [f"## Request\n{_clip(question, MAX_QUESTION_CHARS)}"]
    if tool_results:
        shown = json.dumps(tool_results, default=str, ensure_ascii=False)
        parts.append(f"## Tool results the assistant had\n{_clip(shown, MAX_TOOL_CHARS)}")
    parts.append(f"## Answer\n{_clip(answer, MAX_ANSWER_CHARS)}")
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n\n".join(parts)}]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + " […]"


@dataclass(frozen=True)
class Verdict:
    score: float
    reason: str


class NotAVerdict(ValueError):
    """The judge's reply is not the JSON object asked for."""


def parse_verdict(reply: str | None) -> Verdict:
    """The judge's reply as a verdict; `NotAVerdict` saying what is wrong with it."""
    text = (reply or "").strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        data = json.loads(text)
    except ValueError:
        raise NotAVerdict("the judge's reply is not JSON") from None
    if not isinstance(data, dict):
        raise NotAVerdict("the judge's reply is not a JSON object")
    score, reason = data.get("score"), data.get("reason")
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise NotAVerdict("the judge's reply has no numeric score")
    if not 0.0 <= float(score) <= 1.0:
        raise NotAVerdict(f"the judge's score {score} is outside [0, 1]")
    if not isinstance(reason, str):
        raise NotAVerdict("the judge's reply has no reason")
    return Verdict(float(score), reason[:2000])


def question_of(request: dict[str, Any]) -> str:
    """What was asked, from a Started event's request: an agent's prompt (after its
    context), or a chat completion's conversation."""
    if "prompt" in request:
        context = request.get("context") or []
        earlier = [f"{m.get('role')}: {m.get('content')}" for m in context if isinstance(m, dict)]
        return "\n".join([*earlier, str(request["prompt"])])
    messages = request.get("messages") or []
    return "\n".join(
        f"{m.get('role')}: {m.get('content')}" for m in messages if isinstance(m, dict)
    )
