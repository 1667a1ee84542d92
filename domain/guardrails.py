"""Guardrails: a tenant's ordered checks on an execution's input and on the model's output.

Input checks run on the texts the client sent, before the model sees them; output checks on
the model's answer, before the client sees it. A check that fires `block`s (the execution
ends with `blocked_error`), `redact`s (matches become placeholders such as `[EMAIL_1]`; a
`max_length` check truncates) or `flag`s (only recorded). What a check found is recorded as
a `Decision`: counts by kind, never the matched text. Pure: no I/O.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jsonschema
import referencing.exceptions
from jsonschema.exceptions import ValidationError as SchemaValidationError
from jsonschema.exceptions import best_match
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from domain import pii
from domain.errors import CBError, GuardrailBlocked, GuardrailOutputBlocked, InvalidRequest
from domain.pii import PiiKind

Action = Literal["block", "redact", "flag"]
Stage = Literal["input", "output"]
MAX_CHECKS = 20
"""At most this many checks on each side."""
MAX_SCHEMA_CHARS = 100_000


# --- configuration ------------------------------------------------------------------------


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action


class PiiCheck(_Check):
    """Personal data of the given kinds (None: every kind, see `domain.pii`).

    `restore`: when input is redacted, the answer's placeholders may be put back to the
    original values in what the client receives.
    """

    type: Literal["pii"] = "pii"
    kinds: list[PiiKind] | None = Field(default=None, min_length=1)
    restore: bool = True


def _valid_regex(pattern: str) -> str:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regex {pattern!r}: {exc}") from None
    if compiled.fullmatch(""):
        raise ValueError(f"regex {pattern!r} matches the empty string")
    return pattern


_Pattern = Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_valid_regex)]


class RegexCheck(_Check):
    """Matches of any of `patterns` (Python `re` syntax); `name` labels it in decisions."""

    type: Literal["regex"] = "regex"
    patterns: list[_Pattern] = Field(min_length=1, max_length=50)
    name: str | None = Field(default=None, max_length=100)


def _not_blank(word: str) -> str:
    if not word.strip():
        raise ValueError("a keyword must not be blank")
    return word


_Keyword = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_not_blank)]


class KeywordsCheck(_Check):
    """Whole words or phrases (a phrase's words may be separated by any whitespace)."""

    type: Literal["keywords"] = "keywords"
    words: list[_Keyword] = Field(min_length=1, max_length=1000)
    case_sensitive: bool = False


class MaxLengthCheck(_Check):
    """A text longer than `max_chars` characters; `redact` truncates it to `max_chars`.

    On input each text (message) is measured on its own.
    """

    type: Literal["max_length"] = "max_length"
    max_chars: int = Field(gt=0, le=10_000_000)


class JsonSchemaCheck(_Check):
    """The answer must be a JSON value valid against `schema` (output only; never redacts).

    `repair`: when it fails, the caller may ask the model once more (see `repair_prompt`).
    """

    model_config = ConfigDict(
        validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    type: Literal["json_schema"] = "json_schema"
    json_schema: dict[str, Any] = Field(alias="schema")
    repair: bool = True

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(schema)) > MAX_SCHEMA_CHARS:
            raise ValueError(f"the schema is longer than {MAX_SCHEMA_CHARS} characters")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"invalid JSON Schema at {exc.json_path}: {exc.message}") from None
        for ref in _references(schema):
            if not ref.startswith("#"):
                raise ValueError(f"only references within the schema (#...) are allowed: {ref!r}")
        return schema

    @model_validator(mode="after")
    def _no_redact(self) -> JsonSchemaCheck:
        if self.action == "redact":
            raise ValueError("action 'redact' is not allowed for a json_schema check")
        return self


def _references(value: Any) -> Iterator[str]:
    """Every `$ref` (and dynamic or recursive ref) in a schema."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(item, str):
                yield item
            else:
                yield from _references(item)
    elif isinstance(value, list):
        for item in value:
            yield from _references(item)


Check = Annotated[
    PiiCheck | RegexCheck | KeywordsCheck | MaxLengthCheck | JsonSchemaCheck,
    Field(discriminator="type"),
]
"""One guardrail check, told apart by its `type`."""
CHECK_TYPES = ("pii", "regex", "keywords", "max_length", "json_schema")


def _input_check(check: Any) -> Any:
    if isinstance(check, JsonSchemaCheck):
        raise ValueError("a json_schema check is only allowed in output")
    return check


InputCheck = Annotated[Check, AfterValidator(_input_check)]


class Guardrails(BaseModel):
    """A tenant's or an agent's checks: `input` before the model, `output` after it."""

    model_config = ConfigDict(extra="forbid")

    input: list[InputCheck] = Field(default_factory=list, max_length=MAX_CHECKS)
    output: list[Check] = Field(default_factory=list, max_length=MAX_CHECKS)

    @classmethod
    def parse(cls, data: Any, where: str = "guardrails") -> Guardrails:
        """Validate a configuration; an InvalidRequest names the offending check."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = [f"{where}{_location(e['loc'])}: {_message(e)}" for e in exc.errors()]
            raise InvalidRequest("; ".join(problems[:5])) from None

    @staticmethod
    def merged(tenant: Guardrails | None, agent: Guardrails | None) -> Guardrails:
        """The tenant's checks, then the agent's, on each side (up to twice `MAX_CHECKS`)."""
        sides = [g for g in (tenant, agent) if g is not None]
        return Guardrails.model_construct(
            input=[c for g in sides for c in g.input],
            output=[c for g in sides for c in g.output],
        )


def _location(loc: tuple[int | str, ...]) -> str:
    parts = list(loc)
    if len(parts) >= 3 and parts[0] in ("input", "output") and parts[2] in CHECK_TYPES:
        del parts[2]  # the union's tag, already implied by the check
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def _message(error: Any) -> str:
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


# --- decisions ----------------------------------------------------------------------------


@dataclass
class Decision:
    """A check that fired: where, what it does, and what it found (counts, never text)."""

    stage: Stage
    index: int  # position of the check in its side's list
    check: str  # the check's type
    action: str  # block | redact | flag
    findings: dict[str, int]
    detail: str | None = None  # a safe explanation: no matched or instance value

    def as_event(self) -> dict[str, Any]:
        """The decision as recorded in an event or the audit trail."""
        return {
            "stage": self.stage,
            "index": self.index,
            "check": self.check,
            "action": self.action,
            "findings": dict(self.findings),
            "detail": self.detail,
        }


def blocked_error(decision: Decision) -> CBError:
    """The client's error for a blocking decision: 400 on input, 422 on output."""
    cls = GuardrailBlocked if decision.stage == "input" else GuardrailOutputBlocked
    what = "request" if decision.stage == "input" else "response"
    message = f"the {what} was blocked by guardrail {decision.stage}[{decision.index}] "
    message += f"({decision.check})" + (f": {decision.detail}" if decision.detail else "")
    return cls(
        message,
        details={
            "stage": decision.stage,
            "check": decision.check,
            "index": decision.index,
            "findings": dict(decision.findings),
        },
    )


@dataclass
class InputVerdict:
    """What the input checks made of the client's texts."""

    texts: list[str]  # after redaction, in the order given
    decisions: list[Decision] = field(default_factory=list)
    blocked: Decision | None = None
    placeholders: dict[str, str] = field(default_factory=dict)
    """Placeholder → original value, for values a `pii` check with `restore` redacted."""


@dataclass
class OutputVerdict:
    """What the output checks made of the model's answer."""

    text: str  # for the client, placeholders restored; "" when blocked
    decisions: list[Decision] = field(default_factory=list)
    blocked: Decision | None = None
    schema_error: str | None = None  # the first failing json_schema check's error
    repair_schema: dict[str, Any] | None = None  # that check's schema, when it allows repair


# --- matching and redaction ---------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\[([A-Z][A-Z0-9_]*)_(\d+)\]")


@dataclass(frozen=True)
class _Hit:
    start: int
    end: int
    finding: str  # the key counted in the decision's findings
    label: str  # the placeholder's label: EMAIL, CARD, …, REDACTED
    key: str  # the value as compared for "same value, same placeholder"


class _Redactor:
    """Hands out placeholders, the same one for the same value, numbered per label."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.known: set[str] = set(known)  # placeholders issued earlier (the input's)
        self.counters: dict[str, int] = {}
        self.by_value: dict[tuple[str, str], str] = {}
        self.restorable: dict[str, str] = {}
        self.observe(" ".join(self.known))

    def observe(self, text: str) -> None:
        """Number after any placeholder-like token in `text`, so none is issued twice."""
        for m in _PLACEHOLDER.finditer(text):
            self.counters[m[1]] = max(self.counters.get(m[1], 0), int(m[2]))

    def placeholder(self, hit: _Hit, original: str, restorable: bool) -> str:
        """The placeholder of a value: the one it already has, or the next of its label."""
        token = self.by_value.get((hit.label, hit.key))
        if token is None:
            self.counters[hit.label] = self.counters.get(hit.label, 0) + 1
            token = f"[{hit.label}_{self.counters[hit.label]}]"
            self.by_value[hit.label, hit.key] = token
            self.known.add(token)
        if restorable:
            self.restorable.setdefault(token, original)
        return token

    def protected(self, text: str) -> list[tuple[int, int]]:
        """Where `text` holds placeholders already issued: no later check may match there."""
        return [m.span() for m in _PLACEHOLDER.finditer(text) if m[0] in self.known]


@functools.lru_cache(maxsize=256)
def _keywords_pattern(words: tuple[str, ...], case_sensitive: bool) -> re.Pattern[str]:
    phrases = sorted({r"\s+".join(map(re.escape, w.split())) for w in words}, key=len)
    body = "|".join(reversed(phrases))  # longest first
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)", 0 if case_sensitive else re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _hits(
    check: PiiCheck | RegexCheck | KeywordsCheck, text: str, redactor: _Redactor
) -> list[_Hit]:
    """The check's non-overlapping matches in `text`, away from issued placeholders."""
    found: list[_Hit] = []
    if isinstance(check, PiiCheck):
        for span in pii.detect(text, check.kinds):
            found.append(
                _Hit(span.start, span.end, span.kind, span.kind.upper(), pii.normalized(span))
            )
    elif isinstance(check, RegexCheck):
        for i, pattern in enumerate(check.patterns):
            for m in _regex(pattern).finditer(text):
                if m.end() > m.start():
                    found.append(_Hit(m.start(), m.end(), f"pattern_{i}", "REDACTED", m[0]))
    else:
        pattern = _keywords_pattern(tuple(check.words), check.case_sensitive)
        for m in pattern.finditer(text):
            key = m[0] if check.case_sensitive else m[0].lower()
            found.append(_Hit(m.start(), m.end(), "keyword", "REDACTED", " ".join(key.split())))
    protected = redactor.protected(text)  # in text order, like the hits below
    kept: list[_Hit] = []
    last_end = p = 0
    for hit in sorted(found, key=lambda h: (h.start, -h.end)):
        while p < len(protected) and protected[p][1] <= hit.start:
            p += 1
        if hit.start < last_end or (p < len(protected) and protected[p][0] < hit.end):
            continue
        kept.append(hit)
        last_end = hit.end
    return kept


def _redact(text: str, hits: list[_Hit], redactor: _Redactor, start: int, restorable: bool) -> str:
    """`text[start:]` with each hit replaced by its placeholder (hits clipped to `start`)."""
    out: list[str] = []
    pos = start
    for hit in hits:
        if hit.end <= start:
            continue
        begin = max(hit.start, start)
        out.append(text[pos:begin])
        out.append(redactor.placeholder(hit, text[begin : hit.end], restorable))
        pos = hit.end
    out.append(text[pos:])
    return "".join(out)


def _run(
    check: PiiCheck | RegexCheck | KeywordsCheck | MaxLengthCheck,
    text: str,
    start: int,
    redactor: _Redactor,
    offset: int = 0,
) -> tuple[str, dict[str, int], str | None]:
    """Run a check on `text`, of which `text[start:]` is new: return that new part as the
    check leaves it (redacted, or truncated, when it fires with `redact`), the findings
    (matches that end in the new part) and a safe detail. `text` begins at `offset` of the
    whole text (a stream's window), which only `max_length` needs."""
    if isinstance(check, MaxLengthCheck):
        length = offset + len(text)
        if length <= check.max_chars:
            return text[start:], {}, None
        kept = text[: max(0, check.max_chars - offset)] if check.action == "redact" else text
        return kept[start:], {"length": length}, f"longer than {check.max_chars} chars"
    redactor.observe(text)
    hits = [h for h in _hits(check, text, redactor) if h.end > start]
    findings: dict[str, int] = {}
    for hit in hits:
        findings[hit.finding] = findings.get(hit.finding, 0) + 1
    detail = f"matched {check.name!r}" if isinstance(check, RegexCheck) and check.name else None
    if hits and check.action == "redact":
        restorable = isinstance(check, PiiCheck) and check.restore
        return _redact(text, hits, redactor, start, restorable), findings, detail
    return text[start:], findings, detail


def restore(text: str, placeholders: dict[str, str]) -> str:
    """`text` with each known placeholder put back to its original value."""
    if not placeholders:
        return text
    return _PLACEHOLDER.sub(lambda m: placeholders.get(m[0], m[0]), text)


# --- JSON Schema --------------------------------------------------------------------------


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 200 else text[:197] + "..."


_BOUNDS = {
    "minimum": "should be >= {}",
    "exclusiveMinimum": "should be > {}",
    "maximum": "should be <= {}",
    "exclusiveMaximum": "should be < {}",
    "multipleOf": "should be a multiple of {}",
    "minLength": "should have at least {} characters",
    "maxLength": "should have at most {} characters",
    "minItems": "should have at least {} items",
    "maxItems": "should have at most {} items",
    "minProperties": "should have at least {} properties",
    "maxProperties": "should have at most {} properties",
    "minContains": "should contain at least {} matching items",
    "maxContains": "should contain at most {} matching items",
}


def _explain(error: SchemaValidationError) -> str:
    """What is wrong, told from the schema's side (never the instance's value)."""
    keyword, expected = error.validator, error.validator_value
    if keyword == "required":
        instance = error.instance if isinstance(error.instance, dict) else {}
        missing = [p for p in expected if p not in instance] or list(expected)
        return f"{missing[0]!r} is a required property"
    if keyword == "type":
        types = [expected] if isinstance(expected, str) else list(expected)
        return "should be of type " + " or ".join(map(repr, types))
    if keyword == "enum":
        return f"should be one of {_short(expected)}"
    if keyword == "const":
        return f"should be {_short(expected)}"
    if keyword in _BOUNDS:
        return _BOUNDS[str(keyword)].format(expected)
    if keyword == "pattern":
        return f"should match the pattern {expected!r}"
    if keyword == "format":
        return f"should be a valid {expected!r}"
    if keyword in ("additionalProperties", "unevaluatedProperties"):
        return "has a property the schema does not allow"
    if keyword in ("items", "prefixItems", "additionalItems", "unevaluatedItems"):
        return "has an item the schema does not allow"
    if keyword == "uniqueItems":
        return "should have unique items"
    if keyword in ("dependentRequired", "dependencies"):
        return "lacks a property that another property requires"
    if keyword is None:
        return "is not allowed here"
    return f"does not satisfy the schema's {keyword!r}"


def schema_failure(schema: dict[str, Any], text: str) -> tuple[str, int] | None:
    """Why `text` is not a JSON value valid against `schema` (path, what is wrong and the
    validator keyword) and how many errors there are; None when it is valid."""
    try:
        instance = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"$: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", 1
    try:
        errors = list(_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
    except referencing.exceptions.Unresolvable:
        return "$: the schema has a reference that cannot be resolved", 1
    if not errors:
        return None
    error = best_match(errors)
    return f"{error.json_path}: {_explain(error)} ({error.validator})", len(errors)


def repair_prompt(schema: dict[str, Any], error: str) -> str:
    """The user message asking the model to answer again with only JSON matching `schema`."""
    return (
        f"Your previous answer was not valid: {error}.\n"
        "Answer again with only a JSON value that matches the following JSON Schema, "
        "with no code fences and no text before or after it.\n\n"
        f"{json.dumps(schema, indent=2, ensure_ascii=False)}"
    )


# --- screening ----------------------------------------------------------------------------


def _merge_findings(into: dict[str, int], found: dict[str, int]) -> None:
    for key, count in found.items():
        into[key] = max(into.get(key, 0), count) if key == "length" else into.get(key, 0) + count


def screen_input(
    texts: list[str], checks: list[Check], known: dict[str, str] | None = None
) -> InputVerdict:
    """Run the input checks in order on the client's texts (json_schema checks are skipped).

    Each check sees the texts as the checks before it left them; the first blocking check
    that fires ends the screening. The same value gets the same placeholder in every text.
    `known`: placeholders issued by an earlier screening of the same execution (its input,
    before a tool's result is screened); new ones are numbered after them.
    """
    redactor = _Redactor(known or {})
    decisions: list[Decision] = []
    texts = list(texts)
    for index, check in enumerate(checks):
        if isinstance(check, JsonSchemaCheck):
            continue
        findings: dict[str, int] = {}
        detail: str | None = None
        after: list[str] = []
        for text in texts:
            new, found, why = _run(check, text, 0, redactor)
            _merge_findings(findings, found)
            detail = detail or why
            after.append(new)
        if not findings:
            continue
        decision = Decision("input", index, check.type, check.action, findings, detail)
        decisions.append(decision)
        if check.action == "block":
            return InputVerdict(texts, decisions, decision, dict(redactor.restorable))
        texts = after
    return InputVerdict(texts, decisions, None, dict(redactor.restorable))


def screen_output(text: str, checks: list[Check], placeholders: dict[str, str]) -> OutputVerdict:
    """Run the output checks in order on the model's raw answer, then restore the input's
    placeholders in what the client gets. A blocking check that fires ends the screening.

    A json_schema check validates the answer as the client would get it (placeholders
    restored), so a restored e-mail can satisfy `"format": "email"`.
    """
    redactor = _Redactor(placeholders)
    verdict = OutputVerdict(text="")
    for index, check in enumerate(checks):
        if isinstance(check, JsonSchemaCheck):
            failure = schema_failure(check.json_schema, restore(text, placeholders))
            if failure is None:
                continue
            detail, count = failure
            decision = Decision(
                "output", index, check.type, check.action, {"schema": count}, detail
            )
            if verdict.schema_error is None:
                verdict.schema_error = detail
                verdict.repair_schema = check.json_schema if check.repair else None
        else:
            new, findings, detail = _run(check, text, 0, redactor)
            if not findings:
                continue
            decision = Decision("output", index, check.type, check.action, findings, detail)
            text = new
        verdict.decisions.append(decision)
        if check.action == "block":
            verdict.blocked = decision
            return verdict
    verdict.text = restore(text, placeholders)
    return verdict


_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*\s|\n")
LOOKBACK = 1000
"""How far back into text already released a stream's checks look for a match that ends in
the new text (a longer match is not seen)."""
_SNAP = 200


@dataclass
class _Seen:
    """What a stream has given one check: its length, its tail, and for a json_schema check
    all of it."""

    length: int = 0
    tail: str = ""
    chunks: list[str] = field(default_factory=list)


def _window_start(text: str, start: int) -> int:
    """Where to start looking for matches that end after `start`: `LOOKBACK` before it,
    moved back to just after a whitespace when one is near."""
    begin = max(0, start - LOOKBACK)
    for i in range(begin, max(0, begin - _SNAP), -1):
        if text[i - 1].isspace():
            return i
    return begin


class StreamGuard:
    """Output checks on a streamed answer, released a sentence at a time.

    `feed` holds back the current unfinished sentence (one ends at `.`, `!`, `?` or `…`
    followed by whitespace, or at a newline). At each release every check but json_schema
    looks at the text released so far together with the new sentences (`LOOKBACK` characters
    back), so a match split across deltas is caught; redaction applies to what is released
    now, and findings accumulate into one decision per check. A blocking check sets
    `blocked`, after which nothing more is released. json_schema checks run in `finish`, on
    the whole answer (no repair; a failure sets `schema_error`).
    """

    def __init__(self, checks: list[Check], placeholders: dict[str, str]) -> None:
        self.checks = list(checks)
        self.placeholders = dict(placeholders)
        self.blocked: Decision | None = None
        self.schema_error: str | None = None
        self._redactor = _Redactor(placeholders)
        self._raw = ""  # everything not released yet
        self._seen = [_Seen() for _ in self.checks]
        self._decisions: dict[int, Decision] = {}
        self._done = False

    @property
    def decisions(self) -> list[Decision]:
        """One decision per check that fired, in the checks' order."""
        return [self._decisions[i] for i in sorted(self._decisions)]

    def feed(self, delta: str) -> str:
        """Take a delta of the answer; return the text that may be shown now."""
        if self.blocked is not None or self._done:
            return ""
        self._raw += delta
        end = None
        for m in _SENTENCE_END.finditer(self._raw, max(0, len(self._raw) - len(delta) - 8)):
            end = m.end()
        return "" if end is None else self._release(end, final=False)

    def finish(self) -> str:
        """The answer is complete: return the rest that may be shown."""
        if self.blocked is not None or self._done:
            return ""
        self._done = True
        return self._release(len(self._raw), final=True)

    def _release(self, end: int, final: bool) -> str:
        new, self._raw = self._raw[:end], self._raw[end:]
        for index, check in enumerate(self.checks):
            seen = self._seen[index]
            if isinstance(check, JsonSchemaCheck):
                seen.chunks.append(new)
                if not final:
                    continue
                answer = restore("".join(seen.chunks), self.placeholders)
                failure = schema_failure(check.json_schema, answer)
                if failure is None:
                    continue
                detail, count = failure
                self.schema_error = self.schema_error or detail
                fired = self._record(index, check, {"schema": count}, detail)
            else:
                window, start = seen.tail + new, len(seen.tail)
                offset = seen.length - len(seen.tail)
                begin = _window_start(window, start)
                new, found, detail = _run(
                    check, window[begin:], start - begin, self._redactor, offset + begin
                )
                seen.length += len(window) - start
                seen.tail = window[-(LOOKBACK + _SNAP) :]
                if not found:
                    continue
                fired = self._record(index, check, found, detail)
            if check.action == "block":
                self.blocked = fired
                return ""
        return restore(new, self.placeholders)

    def _record(
        self, index: int, check: Check, found: dict[str, int], detail: str | None
    ) -> Decision:
        decision = self._decisions.get(index)
        if decision is None:
            decision = Decision("output", index, check.type, check.action, {}, detail)
            self._decisions[index] = decision
        _merge_findings(decision.findings, found)
        decision.detail = detail
        return decision
