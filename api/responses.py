"""JSON responses: the executions' by `orjson`, and errors in this API's shape or, on OpenAI's
door, in OpenAI's; a leaf module (the ASGI middlewares use it too)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi.responses import JSONResponse

from domain import fast_json
from domain.chat_completions import openai_error, openai_error_object, openai_status
from domain.errors import CBError
from domain.trace_context import TRACE_ID

OPENAI_DOOR = "/v1/"  # paths answered in OpenAI's shapes, errors included


class FastJSONResponse(JSONResponse):
    """A JSON response rendered by `orjson`: what Starlette's renders, without its spaces'
    cost (a float that is not a number is written `null`, not refused)."""

    def render(self, content: Any) -> bytes:
        return fast_json.dumps(content)


def door_path(scope: Mapping[str, Any]) -> str:
    """The request's path within the app, without the route prefix it is mounted under."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def error_response(err: CBError, path: str = "") -> JSONResponse:
    """`{"error": {"type", "message", …}}` with the error's status, Retry-After and the
    X-RateLimit-* headers of a limit refusal, and the request's `trace_id` when one is known
    (`api.traces`); on OpenAI's door (`path` under /v1/), OpenAI's
    `{"error": {"message", "type", "param", "code"}}` with the same status and headers."""
    headers: dict[str, str] = {}
    if isinstance(err.details, dict) and isinstance(err.details.get("headers"), dict):
        headers.update(err.details["headers"])  # X-RateLimit-* of a limit refusal
    if err.retry_after is not None:
        headers["Retry-After"] = str(max(1, round(err.retry_after + 0.499)))
    if path.startswith(OPENAI_DOOR):
        if err.execution_id:
            headers["x-cb-execution-id"] = err.execution_id
        return JSONResponse(openai_error(err), status_code=openai_status(err), headers=headers)
    body: dict[str, object] = {"error": err.to_dict()}
    if err.execution_id:
        body["execution_id"] = err.execution_id
    trace_id = TRACE_ID.get()
    if trace_id:
        body["trace_id"] = trace_id
    return JSONResponse(body, status_code=err.status, headers=headers)


def plain_error(
    path: str, kind: str, message: str, status: int, param: str | None = None, **extra: object
) -> JSONResponse:
    """An error that is no CBError (validation, routing, the unexpected) in the shape of
    `path`'s door; `extra` goes into this API's shape only."""
    body: dict[str, object]
    if path.startswith(OPENAI_DOOR):
        body = {"error": openai_error_object(kind, message, status, param)}
    else:
        body = {"error": {"type": kind, "message": message, **extra}}
        trace_id = TRACE_ID.get()
        if trace_id:
            body["trace_id"] = trace_id
    return JSONResponse(body, status_code=status)
