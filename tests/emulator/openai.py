"""OpenAI's chat-completions wire format for the provider emulator (and Azure OpenAI's, the
same bodies at a deployment's URL): requests, whole replies, SSE chunks and errors; and its
embeddings (`/v1/embeddings`), deterministic hashed-bag-of-words vectors.

Checked against the official `openai` SDK in `tests/emulator_checks/test_emulator.py`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import struct
import time
from typing import Any

from tests.emulator.rules import Ask, Plan, split_pieces

# ASCII-escaped output is ~40% faster to produce than ensure_ascii=False and parses the same.
_encode = json.JSONEncoder(separators=(",", ":")).encode

STREAM_HEADERS: dict[str, str] = {}
MODELS: tuple[str, ...] = (
    "gpt-4o",
    "gpt-4o-mini",
    "gpt-4.1",
    "gpt-4.1-mini",
    "o3-mini",
    "text-embedding-3-small",
)
_MODEL_CREATED = 1_715_367_049
FINGERPRINT = "fp_e1a7c0de42"

# status -> (error type, error code, message) used when a scripted error has no body.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: (
        "authentication_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    409: ("invalid_request_error", None, "The request conflicts with another request."),
    422: ("invalid_request_error", None, "The request could not be processed."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests. Please try again in 1s. "
        "Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
    504: ("server_error", None, "The server timed out while processing your request."),
}
INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON.)"
)
NO_API_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
AZURE_ROUTE = re.compile(r"/openai/deployments/([^/]+)/chat/completions")
AZURE_NO_KEY = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API endpoint "
    "for your resource."
)


def _hex_id(nbytes: int = 12) -> str:
    return os.urandom(nbytes).hex()


def error_body(
    status: int, message: str | None = None, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Build OpenAI's error object for ``status``; unset fields get the status's defaults."""
    default_type, default_code, default_message = ERRORS.get(
        status,
        ("server_error", None, "Upstream error.")
        if status >= 500
        else ("invalid_request_error", None, "Invalid request."),
    )
    return {
        "error": {
            "message": message or default_message,
            "type": default_type,
            "param": param,
            "code": code if code is not None else default_code,
        }
    }


def model_object(model: str) -> dict[str, Any]:
    """One entry of `GET /v1/models`."""
    return {"id": model, "object": "model", "created": _MODEL_CREATED, "owned_by": "system"}


def message_text(message: Any) -> str:
    """Text of one chat message: string content, or its ``text`` parts joined by spaces."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""


def texts(body: Any) -> list[str]:
    """Texts of all messages of a request body (empty when it has none)."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        return []
    return [message_text(m) for m in body["messages"]]


def ask(body: dict[str, Any]) -> Ask:
    """What the rules read of a valid request: its texts and model, the last user message
    (the echo), the tool messages and whether the stream should report usage."""
    messages: list[dict[str, Any]] = body["messages"]
    last_user = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    stream_options = body.get("stream_options")
    return Ask(
        texts=[message_text(m) for m in messages],
        model=body.get("model"),
        echo=message_text(last_user) if last_user is not None else "",
        tool_results=[message_text(m) for m in messages if m.get("role") == "tool"],
        include_usage=isinstance(stream_options, dict)
        and bool(stream_options.get("include_usage")),
        openai=True,
    )


def _object_with_model(body: Any) -> dict[str, Any] | None:
    """OpenAI's 400 error object unless the body is a JSON object that names a model."""
    if not isinstance(body, dict):
        if body is not None:
            return error_body(400, "Invalid body: expected a JSON object.")
        return error_body(400, INVALID_JSON)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return error_body(400, "you must provide a model parameter", param="model")
    return None


def validate(body: Any) -> dict[str, Any] | None:
    """OpenAI's 400 error object for a malformed chat request, or None if it is usable."""
    refused = _object_with_model(body)
    if refused is not None:
        return refused
    messages = body.get("messages")
    if messages is None:
        return error_body(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        return error_body(
            400,
            "Invalid type for 'messages': expected an array.",
            param="messages",
            code="invalid_type",
        )
    if not messages:
        return error_body(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return error_body(
                400,
                f"Missing required parameter: 'messages[{i}].role'.",
                param=f"messages[{i}].role",
                code="missing_required_parameter",
            )
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return error_body(
            400,
            "Invalid type for 'stream': expected a boolean.",
            param="stream",
            code="invalid_type",
        )
    return None


def usage(plan: Plan) -> dict[str, Any]:
    return {
        "prompt_tokens": plan.prompt,
        "completion_tokens": plan.completion,
        "total_tokens": plan.prompt + plan.completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def whole(model: str, plan: Plan) -> dict[str, Any]:
    """A whole `chat.completion`."""
    message: dict[str, Any] = {
        "role": "assistant",
        "content": plan.content,
        "refusal": None,
        "annotations": [],
    }
    if plan.tool_calls is not None:
        message["tool_calls"] = plan.tool_calls
    return {
        "id": "chatcmpl-" + _hex_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": plan.finish,
            }
        ],
        "usage": usage(plan),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def stream(model: str, plan: Plan) -> tuple[bytes, list[bytes], bytes]:
    """Encoded SSE frames of one streamed reply: (role frame, delta frames, closing frames).

    The closing frames are the finish_reason chunk, the usage chunk (only with
    ``plan.include_usage``) and ``data: [DONE]``.
    """
    base = (
        f'data: {{"id":"chatcmpl-{_hex_id()}","object":"chat.completion.chunk",'
        f'"created":{int(time.time())},"model":{_encode(model)},'
        f'"service_tier":"default","system_fingerprint":"{FINGERPRINT}"'
    )
    head = base + ',"choices":[{"index":0,"delta":'
    usage_tail = ',"usage":null}\n\n' if plan.include_usage else "}\n\n"
    open_tail = ',"logprobs":null,"finish_reason":null}]' + usage_tail

    first: dict[str, Any] = {"role": "assistant", "content": ""}
    deltas: list[dict[str, Any]] = [{"content": p} for p in plan.pieces]
    for index, call in enumerate(plan.tool_calls or ()):
        header = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        if index == 0 and plan.content is None:
            # Like the real API: a tool-call-only reply announces the first call in the
            # role chunk, with null content.
            first = {"role": "assistant", "content": None, "tool_calls": [header]}
        else:
            deltas.append({"tool_calls": [header]})
        for fragment in split_pieces(call["function"]["arguments"]):
            deltas.append({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})

    tail = head + '{},"logprobs":null,"finish_reason":' + _encode(plan.finish) + "}]" + usage_tail
    if plan.include_usage:
        tail += base + ',"choices":[],"usage":' + _encode(usage(plan)) + "}\n\n"
    tail += "data: [DONE]\n\n"
    return (
        (head + _encode(first) + open_tail).encode(),
        [(head + _encode(d) + open_tail).encode() for d in deltas],
        tail.encode(),
    )


# ---------------------------------------------------------------------------- embeddings

EMBEDDING_MODELS: tuple[str, ...] = (
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
)
EMBEDDING_DIMENSIONS = 256
MAX_EMBEDDING_DIMENSIONS = 3072
MAX_EMBEDDING_INPUTS = 2048
# dropped before hashing, so phrasings of one question land on the same buckets
STOPWORDS = frozenset(
    "a an the of is are was be to in on for and or what s please me tell can could you".split()
)
_WORD = re.compile(r"[a-z0-9]+")


def embedding_inputs(body: dict[str, Any]) -> list[list[str]]:
    """The words of each input of a valid embeddings request: lower-cased runs of letters
    and digits of a string, or ``t<id>`` for each id of a token array."""
    raw = body["input"]
    if isinstance(raw, str) or (raw and isinstance(raw[0], int)):
        raw = [raw]
    return [
        _WORD.findall(item.lower()) if isinstance(item, str) else [f"t{t}" for t in item]
        for item in raw
    ]


def embedding_vector(words: list[str], dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """A deterministic, roughly semantic vector: a hashed bag of words.

    The stopwords are dropped (all words are kept when nothing else is left); each word adds
    ±1 to the bucket its BLAKE2b hash picks, the sign taken from another bit of that hash;
    the sum is L2-normalised (an input without words gets a unit vector on bucket 0). So
    "What is the capital of France?" and "what's the capital of France" share every content
    word (cosine ≈ 1), and an unrelated sentence shares none (cosine ≈ 0, short of a hash
    collision). Values are rounded to float32, so the float and base64 encodings agree.
    """
    kept = [w for w in words if w not in STOPWORDS] or words
    sums = [0.0] * dimensions
    for word in kept:
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        sums[digest % dimensions] += -1.0 if digest >> 63 else 1.0
    norm = math.sqrt(sum(v * v for v in sums))
    if norm == 0.0:
        sums[0], norm = 1.0, 1.0
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in sums))
    return list(struct.unpack(f"<{dimensions}f", packed))


def validate_embeddings(body: Any) -> dict[str, Any] | None:
    """OpenAI's 400 error object for a malformed embeddings request, or None if usable."""
    refused = _object_with_model(body)
    if refused is not None:
        return refused
    raw = body.get("input")
    if raw is None:
        return error_body(
            400,
            "Missing required parameter: 'input'.",
            param="input",
            code="missing_required_parameter",
        )
    if not _valid_input(raw):
        return error_body(400, "'$.input' is invalid. Please check the API reference.")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64", None):
        return error_body(
            400,
            f"Invalid value for 'encoding_format': {encoding!r}. Supported values are: "
            "'float' and 'base64'.",
            param="encoding_format",
            code="invalid_value",
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS
    ):
        return error_body(
            400,
            f"Invalid value for 'dimensions': expected an integer between 1 and "
            f"{MAX_EMBEDDING_DIMENSIONS}.",
            param="dimensions",
            code="invalid_value",
        )
    return None


def _valid_input(raw: Any) -> bool:
    """A non-empty string, a token array, or a list (≤ 2048) of non-empty ones of either."""

    def tokens(item: Any) -> bool:
        return (
            isinstance(item, list)
            and bool(item)
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in item)
        )

    if isinstance(raw, str):
        return bool(raw)
    if not isinstance(raw, list) or not raw or len(raw) > MAX_EMBEDDING_INPUTS:
        return False
    if tokens(raw):
        return True
    return all((isinstance(i, str) and bool(i)) or tokens(i) for i in raw)


def unknown_embedding_model(model: str) -> dict[str, Any]:
    """OpenAI's 404 for an embeddings request naming a model it does not have."""
    message = f"The model `{model}` does not exist or you do not have access to it."
    return error_body(404, message, code="model_not_found")


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """The reply to a valid embeddings request: one `embedding` object per input, as floats
    or as base64 of little-endian float32; each word or token counts as a prompt token."""
    dimensions = body.get("dimensions") or EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data: list[dict[str, Any]] = []
    tokens = 0
    for index, words in enumerate(embedding_inputs(body)):
        vector = embedding_vector(words, dimensions)
        tokens += max(1, len(words))
        encoded: list[float] | str = vector
        if as_base64:
            encoded = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
