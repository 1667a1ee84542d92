"""Error taxonomy: every failure a client can see has a stable `type` and an HTTP status."""

from __future__ import annotations

from typing import Any, ClassVar


class CBError(Exception):
    """Base of all errors a client may see; `type` is stable and machine-readable."""

    type: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Register a subclass that declares its own `type`, so `from_dict` can rebuild it.

        A subclass that inherits its parent's `type` is not registered: it crosses a process
        boundary as its parent.
        """
        super().__init_subclass__(**kwargs)
        if "type" not in cls.__dict__:
            return
        known = ERROR_TYPES.get(cls.type)
        if known is not None and known is not cls:
            raise TypeError(f"error type {cls.type!r} is already taken by {known.__name__}")
        ERROR_TYPES[cls.type] = cls

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        execution_id: str | None = None,
        details: Any = None,
        audit: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.execution_id = execution_id
        self.details = details
        self.audit = audit  # audit-trail entries this refusal makes; never sent to the client

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error (never a stack trace, never a secret)."""
        out: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.execution_id:
            out["execution_id"] = self.execution_id
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        if self.details is not None:
            out["details"] = self.details
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CBError:
        """Rebuild an error sent across a process boundary as a dict."""
        cls = ERROR_TYPES.get(data.get("type", ""), CBError)
        return cls(
            data.get("message", ""),
            retry_after=data.get("retry_after"),
            execution_id=data.get("execution_id"),
            details=data.get("details"),
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the client-visible dict, so the class survives Ray's process boundary."""
        return (CBError.from_dict, (self.to_dict(),))


ERROR_TYPES: dict[str, type[CBError]] = {CBError.type: CBError}
"""Every error class by its `type`; filled by `CBError.__init_subclass__`."""


class InvalidRequest(CBError):
    type = "invalid_request"
    status = 400


class PayloadTooLarge(CBError):
    type = "payload_too_large"
    status = 413


class MissingTenant(CBError):
    type = "missing_tenant"
    status = 400


class AuthenticationFailed(CBError):
    type = "authentication_failed"
    status = 401


class PermissionDenied(CBError):
    type = "permission_denied"
    status = 403


class NotFound(CBError):
    type = "not_found"
    status = 404


class Conflict(CBError):
    type = "conflict"
    status = 409


class PayloadErased(CBError):
    """What was asked for needs an execution's payload, and its key was destroyed."""

    type = "payload_erased"
    status = 409


class RateLimited(CBError):
    type = "rate_limited"
    status = 429


class BudgetExceeded(CBError):
    """A hard budget would be exceeded by the execution's worst-case cost; `details` names
    the budget (`scope`, `limit_usd`, `period`), its `spent_usd` and `reserved_usd`, and
    `period_end` (ISO 8601 UTC)."""

    type = "budget_exceeded"
    status = 402


class ServiceUnavailable(CBError):
    type = "service_unavailable"
    status = 503
    retryable = True


class Overloaded(ServiceUnavailable):
    """The ingress replica is at capacity and its bounded queue (or this tenant's share of
    it) is full, or the wait in it ran out."""

    type = "overloaded"


class CapacityExhausted(ServiceUnavailable):
    """No node of the cluster has room for this tenant's actor now (each takes one unit of
    the operator's tenant resource, and every node's units are taken)."""

    type = "capacity_exhausted"


class ExecutionInterrupted(CBError):
    """The runtime running the execution stopped; it is recorded as failed, never rerun."""

    type = "execution_interrupted"
    status = 503


class ResumeUnavailable(CBError):
    """A stream cannot be resumed exactly after the given event id (it would leave a gap)."""

    type = "resume_unavailable"
    status = 410


class ModelNotFound(CBError):
    type = "model_not_found"
    status = 400


class ModelNotAllowed(CBError):
    """The tenant's allow-list does not include the model."""

    type = "model_not_allowed"
    status = 403


class CapabilityNotSupported(CBError):
    """The request needs something (tools, streaming) that no candidate model has."""

    type = "capability_not_supported"
    status = 400


class UnknownTool(CBError):
    """A tool name that resolves to no built-in tool and no tool of the tenant's MCP servers."""

    type = "unknown_tool"
    status = 400


class ToolIterationLimit(CBError):
    """The model kept calling tools past the execution's iteration cap."""

    type = "tool_iteration_limit"
    status = 422


class NoModelAvailable(CBError):
    type = "no_model_available"
    status = 503


class ProviderError(CBError):
    """The provider failed in a way that is not the client's fault."""

    type = "provider_error"
    status = 502
    retryable = True


class ProviderTimeout(ProviderError):
    type = "provider_timeout"
    status = 504


class ProviderRateLimited(ProviderError):
    type = "provider_rate_limited"
    status = 429


class ProviderAuthenticationFailed(ProviderError):
    type = "provider_authentication_failed"
    retryable = False


class ProviderRejectedRequest(ProviderError):
    type = "provider_rejected_request"
    status = 400
    retryable = False


class ProviderOverloaded(ProviderError):
    """The provider says it is overloaded (Anthropic's 529, an `overloaded_error` event)."""

    type = "provider_overloaded"
    status = 503


class ContextLengthExceeded(ProviderError):
    """The prompt and `max_tokens` do not fit the model's context window."""

    type = "context_length_exceeded"
    status = 400
    retryable = False


class CircuitOpen(ProviderError):
    type = "provider_circuit_open"
    status = 503


class GuardrailBlocked(CBError):
    """A guardrail check with action `block` fired on the request's input; `details` are
    `{"stage", "check", "index", "findings"}` (counts only, never the matched text)."""

    type = "guardrail_blocked"
    status = 400


class GuardrailOutputBlocked(GuardrailBlocked):
    """A guardrail check with action `block` fired on the model's output (or its answer did
    not match the required JSON Schema); `details` as for `GuardrailBlocked`."""

    type = "guardrail_output_blocked"
    status = 422


class IdempotencyKeyReused(CBError):
    """An `Idempotency-Key` used within 24 hours for a different request (another body or
    another operation); the key keeps naming the first."""

    type = "idempotency_key_reused"
    status = 422


ERROR_CATEGORIES = ("client", "provider", "internal")
"""Who a failure is down to: the caller, an upstream LLM provider, or this gateway."""


def category_of(err: BaseException | type[BaseException]) -> str:
    """The category (one of `ERROR_CATEGORIES`) of an error or error class.

    Provider failures are `provider` (a provider's 5xx, timeout or rate limit, an open
    breaker, no model available right now), except a provider's refusal of the request
    itself (400: rejected request, context too long), which is the client's like every other
    4xx; any other 5xx, and any exception that is not a CBError, is `internal`.
    """
    cls = err if isinstance(err, type) else type(err)
    if not issubclass(cls, CBError):
        return "internal"
    if issubclass(cls, ProviderRateLimited | NoModelAvailable):
        return "provider"
    if cls.status < 500:
        return "client"
    if issubclass(cls, ProviderError):
        return "provider"
    return "internal"
