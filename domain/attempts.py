"""Attempts of one execution: when an interrupted execution may run again, and how a
restarted attempt's stream events are numbered.

An execution whose tenant runtime stopped mid-run is run again as a new attempt under the
same execution id, when that cannot repeat an effect outside the platform: every tool it
called is a built-in (pure calculations), and it has had fewer than `MAX_ATTEMPTS`. The
provider calls of the interrupted attempt are not billed (their usage died with it).

Attempt `n`'s stream events are numbered from `(n - 1) * ATTEMPT_ID_SPAN + 1`, so every id a
client can hold from an earlier attempt (even one never checkpointed) is below the new
attempt's first, `attempt_restarted`: a resume after any delivered id is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.tools import BUILTIN_TOOLS

MAX_ATTEMPTS = 3
ATTEMPT_ID_SPAN = 1_000_000  # events of one attempt; a stream is far shorter


def first_id_before(attempt: int) -> int:
    """The id just below attempt `attempt`'s first stream event (0 for the first)."""
    return (attempt - 1) * ATTEMPT_ID_SPAN


RESTARTABLE_KINDS = ("agent_execution", "chat_completion")  # what a client runs and waits for


def may_restart(kind: str, attempt: int, tools_called: Iterable[dict[str, Any]]) -> bool:
    """Whether an interrupted execution at `attempt` may run again: a client's execution
    (not a collaboration's step or a judge's: their runs retry by their own rules), only
    built-in tools called (nothing outside saw it), attempts left."""
    return (
        kind in RESTARTABLE_KINDS
        and attempt < MAX_ATTEMPTS
        and all(call["name"] in BUILTIN_TOOLS for call in tools_called)
    )
