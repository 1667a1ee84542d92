"""Log lines of every process of ours: plain text (the default) or one JSON object per line
(`CB_LOG_FORMAT=json`), never a credential, and a prompt only with `CB_LOG_PROMPTS=1`.

`configure_logging(settings, role)` is called once per process (each actor's `__init__`, the
ingress replica's, `serve_app.main`, the CLI); calling it again re-applies it, never adding a
second handler. A JSON line has `time` (ISO 8601 UTC), `level`, `logger`, `message`, `role`,
`pid`, `tenant_id`, `execution_id` and `trace_id` (from `domain.trace_context`, or what the
call passes in `extra`), `error_category` when given, any other `extra` field, and `exc_info`
as a string.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from actors.settings import Settings
from domain.trace_context import EXECUTION_ID, TENANT_ID, TRACE_ID

REDACTED = "[REDACTED]"

# an environment variable whose value is a credential (as serve_app.forwarded_env judges it)
SECRET_ENV_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
MIN_SECRET_LEN = 8  # shorter values (flags, ports) would blank ordinary words

# an `extra` field whose value is a credential, whatever it looks like
SECRET_FIELD = re.compile(
    r"^(authorization|proxy-authorization|x-api-key|api-key|x-goog-api-key|cookie|set-cookie"
    r"|.*(api_?key|secret|password|passwd|credential|master_?key).*|(.*[_-])?token)$",
    re.IGNORECASE,
)
# `extra` fields that carry request or answer content: kept only with CB_LOG_PROMPTS=1
PROMPT_FIELDS = frozenset(
    {
        "prompt",
        "prompts",
        "messages",
        "system_prompt",
        "input",
        "content",
        "response",
        "completion",
        "body",
        "request_body",
        "arguments",
        "tool_result",
    }
)

# what pydantic quotes of a value it refused (a prompt, a message): kept with CB_LOG_PROMPTS=1
_INPUT_VALUE = re.compile(
    r"input_value=(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\{.*?\}|\[.*?\]|[^,\]\n]*)"
)
OMITTED = "[omitted]"

_PATTERNS: tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...] = (
    # `Authorization: Bearer …`, `"api_key": "…"`, `password=…`, `x-api-key: …`
    (
        re.compile(
            r"(?i)(\b(?:proxy-)?authorization|\bx-api-key|\bapi-key|\bx-goog-api-key"
            r"|\bapi_?key|\baccess_token|\brefresh_token|\bclient_secret|\bpassword|\bpasswd"
            r"|\bsecret|\btoken)\b([\"']?\s*[:=]\s*[\"']?)(?:(bearer|basic|token)\s+)?"
            r"(?!\[REDACTED\]|(?:bearer|basic|token)\s+\[REDACTED\])[^\s\"',;&)}\]]+"
        ),
        lambda m: f"{m.group(1)}{m.group(2)}{m.group(3) + ' ' if m.group(3) else ''}{REDACTED}",
    ),
    # a bearer or basic credential anywhere
    (
        re.compile(r"(?i)\b(bearer|basic)\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{6,}"),
        r"\1 " + REDACTED,
    ),
    # key-shaped strings: OpenAI/Anthropic `sk-…`, tenant keys `cbk_…`, Google `AIza…`, JWTs
    (
        re.compile(
            r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{8,}|\bcbk_[A-Za-z0-9_-]{8,}|\bAIza[0-9A-Za-z_-]{20,}"
            r"|\bgh[pousr]_[A-Za-z0-9]{20,}|\bxox[abpr]-[A-Za-z0-9-]{10,}"
            r"|\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        ),
        REDACTED,
    ),
    # the password of a URL (`postgresql://user:password@host/db`)
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@]+:)[^@\s/]+(@)"), r"\1" + REDACTED + r"\2"),
)


class Redactor:
    """Blanks credentials in text: the values of this process's secret environment variables
    (read as they are now: a token generated after start-up is covered), and anything shaped
    like a credential (see `_PATTERNS`)."""

    def __init__(
        self, environ: Mapping[str, str] | None = None, *, log_prompts: bool = False
    ) -> None:
        self.environ = os.environ if environ is None else environ
        self.log_prompts = log_prompts
        self._names: list[str] = []
        self._seen = -1

    def secrets(self) -> list[str]:
        """The values to blank, longest first (so one that contains another goes whole)."""
        if len(self.environ) != self._seen:  # a variable was added or removed
            self._seen = len(self.environ)
            self._names = [k for k in self.environ if SECRET_ENV_NAME.search(k)]
        values = {self.environ.get(k, "") for k in self._names}
        return sorted((v for v in values if len(v) >= MIN_SECRET_LEN), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for value in self.secrets():
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        if not self.log_prompts and "input_value=" in text:
            text = _INPUT_VALUE.sub("input_value=" + OMITTED, text)
        return text


# attributes every LogRecord has; anything else on a record came from `extra` (or a filter)
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}
_CONTEXT = {"tenant_id": TENANT_ID, "execution_id": EXECUTION_ID, "trace_id": TRACE_ID}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line; credentials blanked, content fields dropped
    unless `log_prompts`."""

    def __init__(
        self,
        role: str,
        *,
        log_prompts: bool = False,
        static: Mapping[str, Any] | None = None,
        redact: Redactor | None = None,
    ) -> None:
        super().__init__()
        self.role = role
        self.log_prompts = log_prompts
        self.static = dict(static or {})
        self.redact = redact or Redactor(log_prompts=log_prompts)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "role": self.role,
            "pid": record.process,
        }
        for name, var in _CONTEXT.items():
            out[name] = record.__dict__.get(name) or var.get() or self.static.get(name)
        for key, value in self.static.items():
            out.setdefault(key, value)
        for key, value in record.__dict__.items():
            if key in _STANDARD or key in out or key.startswith("_"):
                continue
            if key in PROMPT_FIELDS and not self.log_prompts:
                continue
            out[key] = REDACTED if SECRET_FIELD.match(key) else self._clean(value)
        if record.exc_info:
            out["exc_info"] = self.redact(self.formatException(record.exc_info))
        elif record.exc_text:
            out["exc_info"] = self.redact(record.exc_text)
        if record.stack_info:
            out["stack_info"] = self.redact(self.formatStack(record.stack_info))
        return json.dumps(out, default=str, ensure_ascii=False)

    def _clean(self, value: Any) -> Any:
        """The value as JSON can hold it, credentials blanked all the way down."""
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {
                str(k): REDACTED
                if SECRET_FIELD.match(str(k))
                else None
                if str(k) in PROMPT_FIELDS and not self.log_prompts
                else self._clean(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple | set | frozenset):
            return [self._clean(v) for v in value]
        return self.redact(str(value))


class TextFormatter(logging.Formatter):
    """The plain-text line (`time level logger message`), credentials blanked."""

    def __init__(self, redact: Redactor | None = None, *, log_prompts: bool = False) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.redact = redact or Redactor(log_prompts=log_prompts)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


# Ray's and Serve's own loggers do not propagate to the root: in JSON mode their stream
# handlers get our formatter too, so the process's stderr is JSON throughout
RAY_LOGGERS = ("ray", "ray.serve", "ray.data", "ray.train", "ray.tune")
QUIET_LOGGERS = ("httpx", "httpcore")  # a line per HTTP request, with its URL


class _OurHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The root handler `configure_logging` installs (found again by its class)."""


def configure_logging(
    settings: Settings | None, role: str, level: int | str | None = None, **static: str
) -> logging.Formatter:
    """Send this process's log lines to stderr in the configured format; returns the formatter.

    `role` names the process (`ingress`, `tenant`, `provider`, `projection`, `config`,
    `metrics`, `driver`, `cli`); `static` fields go on every line unless the record has its
    own (the tenant actor passes its `tenant_id`). The level is `level`, else `CB_LOG_LEVEL`,
    else INFO. Idempotent: our handler is installed once, and replaces any plain console
    handler on the root (basicConfig's, Ray's); file and capture handlers stay.
    """
    if settings is None:
        settings = _settings_from_env()
    formatter: logging.Formatter
    if settings.log_format == "json":
        formatter = JsonFormatter(role, log_prompts=settings.log_prompts, static=static)
    else:
        formatter = TextFormatter(log_prompts=settings.log_prompts)
    root = logging.getLogger()
    ours = [h for h in root.handlers if isinstance(h, _OurHandler)]
    for handler in root.handlers[:]:
        # a console handler of someone else's (basicConfig's, Ray's) would repeat each line
        if handler in ours[1:] or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
    if ours:
        handler = ours[0]
    else:
        # the real stderr: a Serve replica may have swapped sys.stderr for a logger
        handler = _OurHandler(sys.__stderr__ or sys.stderr)
        root.addHandler(handler)
    handler.setFormatter(formatter)
    root.setLevel(level or _level_from_env())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if settings.log_format == "json":
        logging.captureWarnings(True)  # `warnings.warn` as a log line, not bare stderr text
        for name in RAY_LOGGERS:
            for ray_handler in _stream_handlers(logging.getLogger(name).handlers):
                ray_handler.setFormatter(formatter)
    return formatter


def _stream_handlers(handlers: Iterable[logging.Handler]) -> list[logging.Handler]:
    """The handlers that write to the process's stderr or stdout (not a file, a buffer or a
    test's capture)."""
    consoles = {id(s) for s in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)}
    return [
        h
        for h in handlers
        if isinstance(h, logging.StreamHandler)
        and not isinstance(h, logging.FileHandler)
        and id(h.stream) in consoles
    ]


def _level_from_env() -> str:
    """`CB_LOG_LEVEL` (DEBUG, INFO, WARNING, ERROR), INFO when unset or unknown."""
    level = os.environ.get("CB_LOG_LEVEL", "INFO").upper()
    return level if level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL") else "INFO"


def _settings_from_env() -> Settings:
    """Only the log settings, as the environment gives them (for a process with no
    Settings at hand)."""
    fmt = os.environ.get("CB_LOG_FORMAT", "text").lower()
    prompts = os.environ.get("CB_LOG_PROMPTS", "").lower() in ("1", "true", "on", "yes")
    return Settings(log_format=fmt if fmt in ("text", "json") else "text", log_prompts=prompts)


def bind_execution(tenant_id: str, execution_id: str) -> None:
    """Name the tenant and execution on every log line of the current task from here on
    (a task's context variables are its own: other executions are not affected)."""
    TENANT_ID.set(tenant_id)
    EXECUTION_ID.set(execution_id)
