"""The chaos suite: load on a running gateway while one thing at a time is killed or broken,
and the account of what became of every request (`cb chaos`, `tests/chaos/`)."""
