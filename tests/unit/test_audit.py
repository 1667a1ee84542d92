"""Audit attribution (`domain/audit.py`): who acted and from where."""

from __future__ import annotations


def test_a_change_records_who_and_from_where_and_gives_both_back() -> None:
    from domain.audit import recorded_by, split_by

    assert split_by(recorded_by("key:k1", "10.0.0.5")) == ("key:k1", "10.0.0.5")
    assert split_by(recorded_by("jwt:ann@example.com", "::1")) == ("jwt:ann@example.com", "::1")
    assert split_by(recorded_by("platform-admin", None)) == ("platform-admin", None)
    assert split_by(None) == (None, None)
