"""Error statuses common to the HTTP providers, mapped onto the gateway's taxonomy."""

from __future__ import annotations

from typing import Any

from domain import errors


def map_status(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """401/403 → credential, 429 → rate limited, 529 → overloaded, a prompt too long for the
    context → its own type, 408/409/5xx → retryable, other 4xx → rejected."""
    detail = error_message(body)
    message = f"provider answered {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return errors.ProviderAuthenticationFailed(
            f"provider rejected the gateway's credential ({status})"
        )
    if status == 429:
        return errors.ProviderRateLimited(message, retry_after=retry_after)
    if status == 529 or error_kind(body) == "overloaded_error":
        return errors.ProviderOverloaded(message, retry_after=retry_after)
    if status in (400, 413) and _context_too_long(body, detail):
        return errors.ContextLengthExceeded(message)
    if status in (408, 409) or status >= 500:
        return errors.ProviderError(message, retry_after=retry_after)
    if status == 404:
        return errors.ProviderRejectedRequest(f"provider does not know the model ({detail})")
    return errors.ProviderRejectedRequest(message)


# how providers say the prompt does not fit (OpenAI's code; Anthropic's and others' words)
_TOO_LONG = ("context_length_exceeded", "prompt is too long", "maximum context length")


def _context_too_long(body: Any, detail: str) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    text = f"{code or ''} {detail}".lower()
    return any(marker in text for marker in _TOO_LONG)


def error_kind(body: Any) -> str:
    """The provider's own error type (`{"error": {"type": …}}`), or ""."""
    err = body.get("error") if isinstance(body, dict) else None
    return str(err.get("type") or "") if isinstance(err, dict) else ""


def error_message(body: Any) -> str:
    """The provider's own message from `{"error": {"message": …}}` or `{"error": "…"}`."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message", ""))[:500]
        if isinstance(err, str):
            return err[:500]
    return ""
