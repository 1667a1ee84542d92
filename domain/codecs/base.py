"""The contract every provider codec module meets (TensorZero's `InferenceProvider` trait).

A codec is a module of four pure functions between the unified model (`domain.llm`) and one
provider's wire format; it does no I/O. A module satisfies this Protocol structurally, so
`codec_for` hands out the module itself: no wrapper, no extra call on the hot path.
"""

from __future__ import annotations

from typing import Any, Protocol

from domain.config import ModelSpec, ProviderSpec
from domain.errors import CBError
from domain.llm import HttpCall, LLMRequest, LLMResponse, StreamChunk
from domain.parameters import FilteredParameters


class Codec(Protocol):
    """Build a provider call, read its reply or stream, and map its error statuses."""

    def build_call(
        self,
        request: LLMRequest,
        model: ModelSpec,
        wire_model: str,
        api_key: str | None,
        provider: ProviderSpec | None = None,
    ) -> tuple[HttpCall, FilteredParameters]:
        """The HTTP call for `request`, and which parameters were kept, dropped or adjusted."""
        ...

    def parse_response(self, body: dict[str, Any]) -> LLMResponse:
        """Read a whole (non-streamed) reply; a malformed one raises ProviderError."""
        ...

    def parse_stream_line(self, line: str) -> StreamChunk | None:
        """Read one line of a streamed reply: a chunk, or None for a line that carries nothing.

        The stream's end is a fresh chunk marked `last`; an in-band error raises a CBError.
        """
        ...

    def map_error(self, status: int, body: Any, retry_after: float | None) -> CBError:
        """The gateway error for a non-200 status and its (parsed JSON, or None) body."""
        ...
