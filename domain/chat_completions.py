"""OpenAI's chat completions, as this gateway takes and answers them (`POST /v1/chat/completions`).

The request is validated here into what an execution needs (`ChatCompletionRequest`); the
answer is an execution's result document rendered in OpenAI's shape (`completion`), a stream
is rendered chunk by chunk (`ChunkFramer`), and an error is OpenAI's error object
(`openai_error`).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain import fast_json
from domain.errors import CBError, InvalidRequest
from domain.llm import ChatMessage
from domain.response_cache import CacheSettings
from domain.schemas import MAX_CONTEXT_MESSAGES, MAX_JSON_DEPTH, json_depth

AGENT_PREFIX = "agent:"
CHAT_KIND = "chat_completion"

# Parameters OpenAI takes that this gateway does not (answered 400, never silently dropped)
UNSUPPORTED = (
    "logprobs",
    "top_logprobs",
    "logit_bias",
    "audio",
    "modalities",
    "prediction",
    "functions",
    "function_call",
    "web_search_options",
)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class Message(BaseModel):
    """One message; `content` a string or text parts (other parts are refused)."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = Field(default=None, max_length=256)

    def text(self) -> str | None:
        if self.content is None or isinstance(self.content, str):
            return self.content
        parts = []
        for part in self.content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise InvalidRequest(
                    f"content parts of type {part.get('type')!r} are not supported; "
                    "send text parts",
                    details={"param": "messages"},
                )
            parts.append(part["text"])
        return "".join(parts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of `POST /v1/chat/completions`, for the fields this gateway honours."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=MAX_CONTEXT_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    max_completion_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    stop: str | list[str] | None = None
    seed: int | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    n: int | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=128)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    store: bool | None = None
    cache: CacheSettings | None = None  # this gateway's: the response cache for this request
    # accepted so the error names them: see UNSUPPORTED
    logprobs: Any = None
    top_logprobs: Any = None
    logit_bias: Any = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    functions: Any = None
    function_call: Any = None
    web_search_options: Any = None

    @field_validator("tools", "response_format")
    @classmethod
    def _shallow(cls, value: Any) -> Any:
        if value is not None and json_depth(value) > MAX_JSON_DEPTH:
            raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
        return value

    def check(self) -> None:
        """What the schema cannot say: one choice, no unsupported options, usable tools."""
        if self.n not in (None, 1):
            raise InvalidRequest("only n=1 is supported", details={"param": "n"})
        for name in UNSUPPORTED:
            if getattr(self, name) not in (None, False, [], {}):
                raise InvalidRequest(f"{name} is not supported", details={"param": name})
        if isinstance(self.stop, list) and len(self.stop) > 4:
            raise InvalidRequest("stop takes at most 4 sequences", details={"param": "stop"})
        for tool in self.tools or []:
            fn = tool.get("function")
            if tool.get("type") != "function" or not isinstance(fn, dict) or not fn.get("name"):
                raise InvalidRequest(
                    "each tool is {'type': 'function', 'function': {'name', …}}",
                    details={"param": "tools"},
                )
        if self.tool_choice is not None and not self.tools and self.tool_choice != "none":
            raise InvalidRequest("tool_choice needs tools", details={"param": "tool_choice"})

    def agent_id(self) -> str | None:
        """The agent named by `agent:<id>`, or None for a model name."""
        if self.model.startswith(AGENT_PREFIX):
            return self.model[len(AGENT_PREFIX) :]
        return None

    def as_job(self) -> dict[str, Any]:
        """What the tenant actor runs: unified messages, parameters, client tools, metadata."""
        self.check()
        parameters: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_completion_tokens or self.max_tokens,
            "stop": [self.stop] if isinstance(self.stop, str) else self.stop,
            "seed": self.seed,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "response_format": self.response_format,
            "tool_choice": self.tool_choice,
            "parallel_tool_calls": self.parallel_tool_calls,
        }
        metadata: dict[str, Any] = dict(self.metadata or {})
        return {
            "model": self.model,
            "messages": [m.model_dump(exclude_none=True) for m in unified_messages(self)],
            "parameters": {k: v for k, v in parameters.items() if v is not None},
            "tools": self.tools or [],
            "metadata": metadata,
            **({"cache": self.cache.model_dump(exclude_none=True)} if self.cache else {}),
            **({"subject": self.user} if self.user else {}),  # the data subject, never kept
        }


def unified_messages(request: ChatCompletionRequest) -> list[ChatMessage]:
    """OpenAI's messages as the codecs take them (`developer` is a system message)."""
    out = []
    for m in request.messages:
        role = "system" if m.role == "developer" else m.role
        if role == "tool" and not m.tool_call_id:
            raise InvalidRequest("a tool message needs tool_call_id", details={"param": "messages"})
        out.append(
            ChatMessage(
                role=role,
                content=m.text(),
                name=m.name,
                tool_calls=m.tool_calls or None,
                tool_call_id=m.tool_call_id,
            )
        )
    return out


def chat_headers(execution_id: str, model: str | None, provider: str | None) -> dict[str, str]:
    """Routing facts of a completion, in headers so the body stays OpenAI's."""
    return {
        "x-cb-execution-id": execution_id,
        "x-cb-model-resolved": model or "",
        "x-cb-provider": provider or "",
    }


def completion_id(execution_id: str) -> str:
    return "chatcmpl-" + execution_id.replace("-", "")


def _usage(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.get("prompt_tokens", 0),
        "completion_tokens": usage.get("completion_tokens", 0),
        "total_tokens": usage.get("total_tokens", 0),
        "prompt_tokens_details": {"cached_tokens": usage.get("cached_tokens", 0)},
    }


def completion(result: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    """A completed execution's result document as a `chat.completion` object."""
    answer = result.get("response") or {}
    metadata = result.get("metadata") or {}
    message: dict[str, Any] = {
        "role": "assistant",
        "content": answer.get("content"),
        "refusal": None,
    }
    if answer.get("tool_calls"):
        message["tool_calls"] = answer["tool_calls"]
        message["content"] = answer.get("content") or None
    return {
        "id": completion_id(result["execution_id"]),
        "object": "chat.completion",
        "created": created or int(time.time()),
        "model": metadata.get("model_resolved") or metadata.get("model_requested"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": answer.get("finish_reason") or "stop",
                "logprobs": None,
            }
        ],
        "usage": _usage(result.get("usage") or {}),
        "system_fingerprint": None,
    }


class ChunkFramer:
    """A chat execution's stream events as `chat.completion.chunk` SSE, then `[DONE]`.

    Events: `execution_start` (the role chunk), `content_chunk`, `tool_call_delta`,
    `usage_update` (kept for the usage chunk), a terminal one (the finish chunk, the usage
    chunk when asked, `[DONE]`); `error` is OpenAI's in-band error object. Others are not shown.
    """

    def __init__(self, execution_id: str, include_usage: bool, created: int | None = None):
        self.id = completion_id(execution_id)
        self.include_usage = include_usage
        self.created = created or int(time.time())
        self.model: str | None = None
        self.usage: dict[str, Any] = {}
        self.finish: str | None = None
        self.tool_calls = False

    def __call__(self, batch: list[dict[str, Any]]) -> bytes:
        return b"".join(self.frame(e["event"], e["data"]) for e in batch)

    def frame(self, event: str, data: dict[str, Any]) -> bytes:
        if event == "execution_start":
            self.model = data.get("model_resolved")
            return self._chunk({"role": "assistant", "content": "", "refusal": None})
        if event == "content_chunk":
            return self._chunk({"content": data["delta"]})
        if event == "tool_call_delta":
            self.tool_calls = True
            return self._chunk({"tool_calls": [data["delta"]]})
        if event == "usage_update":
            self.usage = data
            return b""
        if event == "execution_complete":
            return self._end(data)
        if event == "error":
            body = {"error": openai_error_object(data.get("type", "error"), data.get("message"))}
            return _sse(body)
        return b""

    def _end(self, result: dict[str, Any]) -> bytes:
        answer = result.get("response") or {}
        reason = answer.get("finish_reason") or ("tool_calls" if self.tool_calls else "stop")
        out = self._chunk({}, reason)
        if self.include_usage:
            usage = result.get("usage") or self.usage
            out += _sse({**self._head(), "choices": [], "usage": _usage(usage)})
        return out + b"data: [DONE]\n\n"

    def _head(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        body: dict[str, Any] = {**self._head(), "choices": [choice]}
        if self.include_usage:
            body["usage"] = None
        return _sse(body)


def _sse(body: dict[str, Any]) -> bytes:
    return b"data: " + fast_json.dumps(body) + b"\n\n"


# OpenAI's error `type` by status; `code` carries this gateway's stable error type
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error_object(
    code: str, message: str | None, status: int = 500, param: str | None = None
) -> dict[str, Any]:
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"message": message or code, "type": kind, "param": param, "code": code}


# where OpenAI answers with another status than this API does
OPENAI_STATUSES = {"model_not_found": 404}


def openai_status(err: CBError) -> int:
    return OPENAI_STATUSES.get(err.type, err.status)


def openai_error(err: CBError) -> dict[str, Any]:
    """`{"error": {"message", "type", "param", "code"}}` for a CBError."""
    details = err.details if isinstance(err.details, dict) else {}
    param = details.get("param") if isinstance(details.get("param"), str) else None
    status = openai_status(err)
    if err.type == "model_not_found":
        param = "model"
    return {"error": openai_error_object(err.type, err.message, status, param)}
