"""Log lines: one JSON object per line with the fields, credentials never, prompts only with
CB_LOG_PROMPTS=1; the 5xx line of the ingress names its execution and category."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from actors.log_setup import (
    REDACTED,
    JsonFormatter,
    Redactor,
    TextFormatter,
    bind_execution,
    configure_logging,
)
from actors.settings import Settings
from api import errors as api_errors
from domain.errors import InvalidRequest, ProviderTimeout
from domain.trace_context import TRACE_ID

CANARY = "canary-7f3a9c1e5b2d4f60a8e1"


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", f"openai-{CANARY}")
    monkeypatch.setenv("CB_ADMIN_TOKEN", f"admin-{CANARY}")
    monkeypatch.setenv("CB_MASTER_KEY", f"master-{CANARY}")


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.log_format.{id(out)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def _lines(out: io.StringIO) -> list[dict[str, Any]]:
    text = out.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_each_record_is_one_json_line_with_the_fields() -> None:
    logger, out = _logger(JsonFormatter("tenant", static={"tenant_id": "t-static"}))
    logger.info("first\nwith a second line of its own")
    logger.warning("refused", extra={"error_category": "client", "status": 429})
    try:
        raise RuntimeError("broken")
    except RuntimeError:
        logger.exception("it failed")
    first, refused, failed = _lines(out)
    assert first["time"].endswith("Z") and first["time"][10] == "T"  # ISO 8601 UTC
    assert first["level"] == "INFO" and first["logger"] == logger.name
    assert first["message"] == "first\nwith a second line of its own"
    assert first["role"] == "tenant" and isinstance(first["pid"], int)
    assert first["tenant_id"] == "t-static"  # the process's tenant, with no task context
    assert first["execution_id"] is None and first["trace_id"] is None
    assert "error_category" not in first
    assert refused["error_category"] == "client" and refused["status"] == 429
    assert failed["level"] == "ERROR"
    assert "Traceback" in failed["exc_info"] and "RuntimeError: broken" in failed["exc_info"]


def test_tenant_execution_and_trace_come_from_the_task_context() -> None:
    logger, out = _logger(JsonFormatter("tenant"))

    async def execution(execution_id: str, pause: float) -> None:
        bind_execution("tenant-1", execution_id)
        TRACE_ID.set(f"trace-{execution_id}")
        await asyncio.sleep(pause)
        logger.info("execution completed")

    async def both() -> None:
        await asyncio.gather(execution("e-1", 0.02), execution("e-2", 0.0))
        logger.info("outside any execution")

    asyncio.run(both())
    lines = _lines(out)
    by_id = {line["execution_id"]: line for line in lines}
    assert by_id["e-1"]["trace_id"] == "trace-e-1" and by_id["e-1"]["tenant_id"] == "tenant-1"
    assert by_id["e-2"]["trace_id"] == "trace-e-2"
    assert lines[-1]["execution_id"] is None and lines[-1]["tenant_id"] is None
    # a record's own field wins over the context
    logger.info("explicit", extra={"execution_id": "e-3"})
    assert _lines(out)[-1]["execution_id"] == "e-3"


def test_credentials_are_blanked_in_messages_fields_and_tracebacks(secret_env: None) -> None:
    logger, out = _logger(JsonFormatter("ingress"))
    logger.info("calling with key openai-%s", CANARY)
    logger.info("headers: {'Authorization': 'Bearer tok-%s', 'x-api-key': 'xk-%s'}", CANARY, CANARY)
    logger.info("Authorization: Basic dXNlcjpwYXNzd29yZA== and api_key=plain%s", CANARY)
    logger.info("own key sk-proj-%s, tenant key cbk_%s", CANARY, CANARY)
    logger.info("store at postgresql://cb:pw%s@db:5432/cb", CANARY)
    logger.info(
        "context",
        extra={
            "api_key": "anything",
            "headers": {"Authorization": f"Bearer {CANARY}", "accept": "json"},
            "note": f"admin-{CANARY}",
            "items": [f"master-{CANARY}", 3],
        },
    )
    try:
        raise ValueError(f"bad token admin-{CANARY}")
    except ValueError:
        logger.exception("failed")
    text = out.getvalue()
    assert CANARY not in text, text
    lines = _lines(out)
    assert lines[0]["message"] == f"calling with key {REDACTED}"
    assert lines[1]["message"].count(REDACTED) == 2 and "Bearer" in lines[1]["message"]
    assert lines[4]["message"] == f"store at postgresql://cb:{REDACTED}@db:5432/cb"
    context = lines[5]
    assert context["api_key"] == REDACTED
    assert context["headers"] == {"Authorization": REDACTED, "accept": "json"}
    assert context["items"] == [REDACTED, 3]
    assert "ValueError: bad token" in lines[6]["exc_info"]


def test_ordinary_words_and_usage_fields_are_not_blanked(secret_env: None) -> None:
    redact = Redactor()
    text = "max_tokens=256, prompt_tokens: 12, token bucket refilled, model sk (short)"
    assert redact(text) == text
    logger, out = _logger(JsonFormatter("tenant"))
    logger.info("usage", extra={"prompt_tokens": 12, "max_tokens": 256, "admin_token": "x"})
    line = _lines(out)[0]
    assert (line["prompt_tokens"], line["max_tokens"], line["admin_token"]) == (12, 256, REDACTED)


def test_a_header_holding_a_known_secret_is_blanked_once(secret_env: None) -> None:
    redact = Redactor()
    assert redact(f"Authorization: Bearer admin-{CANARY}") == f"Authorization: Bearer {REDACTED}"
    assert redact(f'{{"x-api-key": "openai-{CANARY}"}}') == f'{{"x-api-key": "{REDACTED}"}}'


def test_a_secret_set_after_start_up_is_blanked(monkeypatch: pytest.MonkeyPatch) -> None:
    redact = Redactor()
    assert redact(f"x {CANARY}") == f"x {CANARY}"
    monkeypatch.setenv("CB_JWT_SECRET", CANARY)  # as serve_app.main generates its token
    assert redact(f"x {CANARY}") == f"x {REDACTED}"


class Ask(BaseModel):
    n: int


def _validation_error() -> Exception:
    try:
        Ask.model_validate({"n": f"my prompt {CANARY}"})
    except Exception as exc:
        return exc
    raise AssertionError("no error")


@pytest.mark.parametrize("log_prompts", [False, True])
def test_prompts_only_with_log_prompts(log_prompts: bool) -> None:
    logger, out = _logger(JsonFormatter("tenant", log_prompts=log_prompts))
    messages = [{"role": "user", "content": f"my prompt {CANARY}"}]
    logger.debug("execution started", extra={"model": "auto", "messages": messages})
    logger.debug("asked", extra={"prompt": f"my prompt {CANARY}", "detail": {"body": CANARY}})
    logger.error("call failed", exc_info=_validation_error())
    started, asked, failed = _lines(out)
    assert started["model"] == "auto" and asked["detail"].keys() == {"body"}
    if log_prompts:
        assert started["messages"] == messages and CANARY in asked["prompt"]
        assert CANARY in failed["exc_info"]
    else:
        assert "messages" not in started and "prompt" not in asked
        assert asked["detail"]["body"] is None
        assert "input_value=[omitted]" in failed["exc_info"]
        assert CANARY not in out.getvalue()


def test_text_format_blanks_credentials_and_omits_fields(secret_env: None) -> None:
    logger, out = _logger(TextFormatter())
    logger.info("key openai-%s", CANARY, extra={"messages": [CANARY]})
    line = out.getvalue()
    assert CANARY not in line and line.rstrip().endswith(f"key {REDACTED}")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


@pytest.fixture
def root_logging() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (configure_logging changes the process's)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_is_idempotent_and_takes_over_the_console(
    root_logging: logging.Logger, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(sys, "__stderr__", sys.stderr)
    console = logging.StreamHandler(sys.stderr)  # as basicConfig or ray.init leaves one
    kept = logging.NullHandler()
    root_logging.addHandler(console)
    root_logging.addHandler(kept)
    settings = Settings(log_format="json")
    configure_logging(settings, "driver")
    configure_logging(settings, "driver")
    ours = [h for h in root_logging.handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1 and console not in root_logging.handlers
    assert kept in root_logging.handlers
    assert root_logging.level == logging.INFO
    logging.getLogger("cb.test").info("hello")
    logging.getLogger("httpx").info("HTTP Request: POST https://api.example/v1")  # quietened
    err = capfd.readouterr().err.strip().splitlines()
    assert [json.loads(line)["message"] for line in err] == ["hello"]
    configure_logging(Settings(), "driver")  # back to text: the same handler, reformatted
    assert isinstance(ours[0].formatter, TextFormatter)
    assert [h for h in root_logging.handlers if h is ours[0]] == ours


def _error_app() -> FastAPI:
    app = FastAPI()
    api_errors.install(app)

    @app.post("/api/v1/agents/{agent_id}/execute")
    async def execute(agent_id: str) -> None:
        if agent_id == "slow":
            raise ProviderTimeout(f"provider said {CANARY}", execution_id="e-504")
        if agent_id == "bad":
            raise InvalidRequest("bad body")
        raise RuntimeError(f"bug {CANARY}")

    return app


def test_each_5xx_logs_its_type_category_execution_and_route(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = TestClient(_error_app(), raise_server_exceptions=False)
    tenant = "0b6f3c1e-8a4d-4f2b-9c7e-1d2e3f4a5b6c"
    with caplog.at_level(logging.INFO, logger=api_errors.log.name):
        assert (
            client.post("/api/v1/agents/slow/execute", headers={"x-tenant-id": tenant}).status_code
            == 504
        )
        assert client.post("/api/v1/agents/bad/execute").status_code == 400
        assert client.post("/api/v1/agents/boom/execute").status_code == 500
    records = [r for r in caplog.records if r.name == api_errors.log.name]
    assert len(records) == 2  # the 400 only at debug
    timeout, bug = records
    assert timeout.levelname == "WARNING"
    assert (timeout.error_type, timeout.error_category, timeout.status) == (
        "provider_timeout", "provider", 504,
    )  # fmt: skip
    assert timeout.execution_id == "e-504" and timeout.tenant_id == tenant
    assert timeout.route == "/api/v1/agents/{agent_id}/execute" and timeout.method == "POST"
    assert bug.levelname == "ERROR" and bug.error_category == "internal" and bug.exc_info
    line = JsonFormatter("ingress").format(timeout)
    assert json.loads(line)["error_category"] == "provider"
    assert CANARY not in line  # a provider's message may quote the request: never logged


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_generated_admin_token_is_printed_only_as_text(
    log_format: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Any,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("CB_BUILD_ON_IMPORT", "0")
    monkeypatch.setenv("CB_SERVE_MODE", "proxy")
    import serve_app

    monkeypatch.setenv("CB_LOG_FORMAT", log_format)
    monkeypatch.setenv("CB_ADMIN_TOKEN", f"admin-{CANARY}")
    serve_app._tell_generated_token(Settings(data_dir=str(tmp_path)))
    printed = capsys.readouterr().out
    kept = tmp_path / "admin-token"
    if log_format == "text":
        assert printed.startswith(f"CB_ADMIN_TOKEN=admin-{CANARY}") and not kept.exists()
    else:
        assert not printed and CANARY not in caplog.text and str(kept) in caplog.text
        assert kept.read_text().strip() == f"admin-{CANARY}"
        assert kept.stat().st_mode & 0o777 == 0o600
