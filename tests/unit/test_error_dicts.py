"""Typed errors (`domain/errors.py`) cross a process boundary as dicts."""

from __future__ import annotations

from domain import errors


def test_errors_survive_a_process_boundary_as_dicts() -> None:
    err = errors.RateLimited("slow down", retry_after=3, execution_id="e1")
    again = errors.CBError.from_dict(err.to_dict())
    assert isinstance(again, errors.RateLimited)
    assert (again.status, again.retry_after, again.execution_id) == (429, 3, "e1")
