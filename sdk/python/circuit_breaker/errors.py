"""Exceptions: one class per error `type` of the API, all under `CircuitBreakerError`."""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BudgetExceededError",
    "CapabilityNotSupportedError",
    "CircuitBreakerError",
    "ConflictError",
    "ContextLengthExceededError",
    "ExecutionCancelledError",
    "ExecutionInterruptedError",
    "GraphQLError",
    "InternalError",
    "InvalidRequestError",
    "MissingTenantError",
    "ModelNotAllowedError",
    "ModelNotFoundError",
    "NoModelAvailableError",
    "NotFoundError",
    "OverloadedError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProviderAuthenticationError",
    "ProviderCircuitOpenError",
    "ProviderError",
    "ProviderOverloadedError",
    "ProviderRateLimitedError",
    "ProviderRejectedRequestError",
    "ProviderTimeoutError",
    "RateLimitError",
    "ResumeUnavailableError",
    "ServiceUnavailableError",
    "StreamError",
    "ToolIterationLimitError",
    "UnknownToolError",
]


class CircuitBreakerError(Exception):
    """Base of every error the SDK raises."""


class APIConnectionError(CircuitBreakerError):
    """The server could not be reached (or the connection broke before an answer)."""


class APITimeoutError(APIConnectionError):
    """The server did not answer in time (or a stream's heartbeat never came)."""


class StreamError(CircuitBreakerError):
    """A stream broke and could not be resumed within the allowed tries."""


class GraphQLError(CircuitBreakerError):
    """A GraphQL answer carried errors that name no API error type."""

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class APIError(CircuitBreakerError):
    """An error answer of the API: `{"error": {"type", "message", …}}`."""

    type: ClassVar[str] = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        execution_id: str | None = None,
        details: Any = None,
        retry_after: float | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type or self.type
        self.execution_id = execution_id
        self.details = details
        self.retry_after = retry_after
        self.body = body
        self.headers = headers or {}

    def __str__(self) -> str:
        status = f"{self.status} " if self.status else ""
        return f"{status}{self.error_type}: {self.message}"


ERROR_CLASSES: dict[str, type[APIError]] = {}


def _register(cls: type[APIError]) -> type[APIError]:
    ERROR_CLASSES[cls.type] = cls
    return cls


@_register
class InternalError(APIError):
    type = "internal_error"


@_register
class InvalidRequestError(APIError):
    type = "invalid_request"


@_register
class PayloadTooLargeError(APIError):
    type = "payload_too_large"


@_register
class MissingTenantError(APIError):
    type = "missing_tenant"


@_register
class AuthenticationError(APIError):
    type = "authentication_failed"


@_register
class PermissionDeniedError(APIError):
    type = "permission_denied"


@_register
class NotFoundError(APIError):
    type = "not_found"


@_register
class ConflictError(APIError):
    type = "conflict"


@_register
class RateLimitError(APIError):
    """The tenant is over a limit; `retry_after` says when to come back (seconds)."""

    type = "rate_limited"


@_register
class BudgetExceededError(APIError):
    """A hard budget would be passed; `details` names it."""

    type = "budget_exceeded"


@_register
class ServiceUnavailableError(APIError):
    type = "service_unavailable"


@_register
class OverloadedError(ServiceUnavailableError):
    type = "overloaded"


@_register
class ExecutionInterruptedError(APIError):
    type = "execution_interrupted"


@_register
class ExecutionCancelledError(APIError):
    type = "execution_cancelled"


@_register
class ResumeUnavailableError(APIError):
    """A stream cannot be replayed exactly after the given id (`details.replayable_to`)."""

    type = "resume_unavailable"


@_register
class ModelNotFoundError(APIError):
    type = "model_not_found"


@_register
class ModelNotAllowedError(APIError):
    type = "model_not_allowed"


@_register
class CapabilityNotSupportedError(APIError):
    type = "capability_not_supported"


@_register
class UnknownToolError(APIError):
    type = "unknown_tool"


@_register
class ToolIterationLimitError(APIError):
    type = "tool_iteration_limit"


@_register
class NoModelAvailableError(APIError):
    type = "no_model_available"


@_register
class ProviderError(APIError):
    """The provider failed after the gateway's retries and fallbacks."""

    type = "provider_error"


@_register
class ProviderTimeoutError(ProviderError):
    type = "provider_timeout"


@_register
class ProviderRateLimitedError(ProviderError):
    type = "provider_rate_limited"


@_register
class ProviderAuthenticationError(ProviderError):
    type = "provider_authentication_failed"


@_register
class ProviderRejectedRequestError(ProviderError):
    type = "provider_rejected_request"


@_register
class ProviderOverloadedError(ProviderError):
    type = "provider_overloaded"


@_register
class ContextLengthExceededError(ProviderError):
    type = "context_length_exceeded"


@_register
class ProviderCircuitOpenError(ProviderError):
    type = "provider_circuit_open"


_BY_STATUS: dict[int, type[APIError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    402: BudgetExceededError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: ResumeUnavailableError,
    413: PayloadTooLargeError,
    429: RateLimitError,
    502: ProviderError,
    503: ServiceUnavailableError,
    504: ProviderTimeoutError,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta seconds; an HTTP date is not used here)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_from_dict(
    data: dict[str, Any],
    *,
    status: int | None = None,
    retry_after: float | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> APIError:
    """The typed exception for an API error object (`{"type", "message", …}`)."""
    error_type = str(data.get("type") or "")
    cls = ERROR_CLASSES.get(error_type)
    if cls is None:
        cls = _BY_STATUS.get(status or 0, APIError)
    if retry_after is None and data.get("retry_after") is not None:
        retry_after = float(data["retry_after"])
    return cls(
        str(data.get("message") or error_type or f"HTTP {status}"),
        status=status,
        error_type=error_type or cls.type,
        execution_id=data.get("execution_id"),
        details=data.get("details"),
        retry_after=retry_after,
        body=body,
        headers=headers,
    )


def error_from_response(status: int, headers: dict[str, str], body: Any, text: str) -> APIError:
    """The typed exception for an HTTP error answer (JSON error body or not)."""
    retry_after = parse_retry_after(headers.get("retry-after"))
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        data = dict(body["error"])
        data.setdefault("execution_id", body.get("execution_id"))
        # OpenAI's shape (/v1/*): `code` is this API's type
        if data.get("code") and data.get("type") not in ERROR_CLASSES:
            data["type"] = data["code"]
        return error_from_dict(
            data, status=status, retry_after=retry_after, body=body, headers=headers
        )
    cls = _BY_STATUS.get(status, APIError)
    return cls(
        text[:500] or f"HTTP {status}",
        status=status,
        error_type=cls.type,
        retry_after=retry_after,
        body=body,
        headers=headers,
    )


def error_from_graphql(errors: list[dict[str, Any]]) -> CircuitBreakerError:
    """The typed exception for a GraphQL `errors` list (its `extensions.type` when given)."""
    first = errors[0] if errors else {}
    ext = first.get("extensions") or {}
    message = str(first.get("message") or "GraphQL error")
    error_type = ext.get("type")
    if not error_type:
        code = str(ext.get("code") or "")
        error_type = {
            "UNAUTHENTICATED": "authentication_failed",
            "FORBIDDEN": "permission_denied",
            "BAD_USER_INPUT": "invalid_request",
            "NOT_FOUND": "not_found",
        }.get(code) or (code.lower() if code.lower() in ERROR_CLASSES else None)
    if not error_type and "not found" in message.lower():
        error_type = "not_found"
    if not error_type:
        return GraphQLError(message, errors)
    return error_from_dict(
        {
            "type": error_type,
            "message": message,
            "execution_id": ext.get("executionId"),
            "retry_after": ext.get("retryAfter"),
        },
        body={"errors": errors},
    )
