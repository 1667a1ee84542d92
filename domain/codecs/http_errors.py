"""Error statuses common to the HTTP providers, mapped onto the gateway's taxonomy."""

from __future__ import annotations

from typing import Any

from domain import errors


def map_status(status: int, body: Any, retry_after: float | None) -> errors.CBError:
    """401/403 → credential, 429 → rate limited, 408/409/5xx (529 included) → retryable."""
    detail = error_message(body)
    message = f"provider answered {status}" + (f": {detail}" if detail else "")
    if status in (401, 403):
        return errors.ProviderAuthenticationFailed(
            f"provider rejected the gateway's credential ({status})"
        )
    if status == 429:
        return errors.ProviderRateLimited(message, retry_after=retry_after)
    if status in (408, 409) or status >= 500:
        return errors.ProviderError(message, retry_after=retry_after)
    if status == 404:
        return errors.ProviderRejectedRequest(f"provider does not know the model ({detail})")
    return errors.ProviderRejectedRequest(message)


def error_message(body: Any) -> str:
    """The provider's own message from `{"error": {"message": …}}` or `{"error": "…"}`."""
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message", ""))[:500]
        if isinstance(err, str):
            return err[:500]
    return ""
