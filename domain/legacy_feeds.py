"""The messages of the legacy GraphQL subscriptions, and which settled executions a cost feed
has yet to send. Pure: the ingress feeds these from the tenant actor and the read models."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.times import iso

# how far back a cost feed looks again for executions the read model folded late (the
# projection folds within about a second; ends are stamped by the tenant actor's clock)
LATE_FOLD_S = 5.0


def llm_stream_message(
    request_id: str, event: dict[str, Any], now: float, chunks_sent: bool
) -> dict[str, Any] | None:
    """One stream event of a chat completion as `llmStream` sends it, `{id, content, finished,
    timestamp}` (and `error` when it failed); None for events it does not show (start, tool
    calls, usage). The last message is `finished`; it carries the whole answer when no chunk
    was sent before it (an execution that was not streamed)."""
    kind, data = event["event"], event.get("data") or {}
    message = {"id": request_id, "content": "", "finished": False, "timestamp": iso(now)}
    if kind == "content_chunk":
        return {**message, "content": data.get("delta") or ""}
    if kind == "execution_complete":
        whole = "" if chunks_sent else (data.get("response") or {}).get("content")
        return {**message, "content": whole or "", "finished": True}
    if kind == "error":
        error = {k: v for k, v in data.items() if k in ("type", "message")}
        return {**message, "finished": True, "error": error}
    return None


def cost_update(execution: dict[str, Any], user_id: str) -> dict[str, Any]:
    """A settled execution (a history view) as `costUpdates` sends it: `{userId, projectId,
    cost, timestamp, details}`, with the `userId` subscribed to; `projectId` is the
    execution's agent (None for a chat completion without one)."""
    usage = execution.get("usage") or {}
    return {
        "userId": user_id,
        "projectId": execution.get("agent_id"),
        "cost": float(usage.get("cost_usd") or 0.0),
        "timestamp": iso(execution["completed_at"]),
        "details": {
            "executionId": execution["execution_id"],
            "kind": execution.get("kind"),
            "status": execution["status"],
            "model": execution.get("model_resolved"),
            "provider": execution.get("provider"),
            "promptTokens": usage.get("prompt_tokens", 0),
            "completionTokens": usage.get("completion_tokens", 0),
            "totalTokens": usage.get("total_tokens", 0),
        },
    }


@dataclass
class CostCursor:
    """Where a cost feed stands: it sends each execution that ended at or after `since` once,
    in the order they ended, though the read model may fold an end a little late."""

    since: float
    newest: float = 0.0
    _sent: dict[str, float] = field(default_factory=dict)  # execution id -> when it ended

    def ask_from(self) -> float:
        """The earliest end to ask the read model for now."""
        return max(self.since, self.newest - LATE_FOLD_S)

    def take(self, ended: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The executions of `ended` (history views, oldest end first) not sent yet; they
        count as sent from now on."""
        fresh = [
            e
            for e in ended
            if e["completed_at"] is not None
            and e["completed_at"] >= self.since
            and e["execution_id"] not in self._sent
        ]
        for execution in fresh:
            self._sent[execution["execution_id"]] = execution["completed_at"]
            self.newest = max(self.newest, execution["completed_at"])
        horizon = self.ask_from()
        self._sent = {k: at for k, at in self._sent.items() if at >= horizon}
        return fresh
