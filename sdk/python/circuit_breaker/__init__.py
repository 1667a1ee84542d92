"""The Circuit Breaker SDK: `Client`, `AsyncClient`, typed events, models and errors."""

from circuit_breaker._core import VERSION as __version__
from circuit_breaker._stream import AsyncStream, Stream
from circuit_breaker.client import AsyncClient, Client
from circuit_breaker.errors import *  # noqa: F403
from circuit_breaker.errors import __all__ as _errors
from circuit_breaker.events import (
    AttemptRestarted,
    ContentChunk,
    Error,
    ExecutionComplete,
    ExecutionStart,
    StreamEvent,
    ToolCall,
    ToolResult,
    UsageUpdate,
)
from circuit_breaker.models import (
    Agent,
    AuditEntry,
    Budget,
    Execution,
    ExecutionPage,
    ExecutionResult,
    McpServer,
    ModelInfo,
    Tool,
    Usage,
)

__all__ = [
    "__version__", "Client", "AsyncClient", "Stream", "AsyncStream",
    "StreamEvent", "ExecutionStart", "ContentChunk", "ToolCall", "ToolResult", "UsageUpdate",
    "AttemptRestarted", "ExecutionComplete", "Error",
    "Agent", "AuditEntry", "Budget", "Execution", "ExecutionPage", "ExecutionResult",
    "McpServer", "ModelInfo", "Tool", "Usage",
    *_errors,
]  # fmt: skip
